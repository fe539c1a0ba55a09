package aula_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportDirections keeps the layering of docs/architecture.md: HTTP on
// top, services in the middle, storage at the bottom.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/aula-chat/aula/"
	services := []string{"auth", "account", "push", "syncapi", "roomserver", "keys", "media", "consent", "admin"}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, ":")
		pkg = strings.TrimPrefix(pkg, mod)
		for _, d := range strings.Fields(deps) {
			if rest, ok := strings.CutPrefix(d, mod); ok {
				imports[pkg] = append(imports[pkg], rest)
			}
		}
	}
	if len(imports) == 0 {
		t.Fatal("go list found no packages of this module")
	}
	for pkg, deps := range imports {
		for _, d := range deps {
			switch {
			case d == "clientapi" && pkg != "internal/app":
				t.Errorf("%s imports clientapi: only internal/app may (nothing else depends on the HTTP layer)", pkg)
			case pkg == "storage" && (d == "clientapi" || slices.Contains(services, d) || d == "config"):
				t.Errorf("storage imports %s: storage depends on no service", d)
			case strings.HasPrefix(pkg, "internal/") && pkg != "internal/app" && pkg != "internal/apitest" && (d == "clientapi" || slices.Contains(services, d)):
				t.Errorf("%s imports %s: internal helpers sit below the services", pkg, d)
			}
		}
	}
}
