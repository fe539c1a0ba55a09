package consent

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// builtin holds the default policy texts: <version>.<lang>.html.
//
//go:embed templates/*.html
var builtin embed.FS

// languages are the page languages aula has texts for, preferred last
// resort first.
var languages = []string{"en", "de"}

// policies finds and parses policy templates: first in the configured
// template_dir, then among the built-in ones.
type policies struct {
	dirs  []fs.FS
	mu    sync.Mutex
	cache map[string]*template.Template // "<version>.<lang>" → parsed template
}

func loadPolicies(dir string) (*policies, error) {
	sub, err := fs.Sub(builtin, "templates")
	if err != nil {
		return nil, err
	}
	p := &policies{cache: map[string]*template.Template{}}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("consent: template_dir %s is not a directory", dir)
		}
		p.dirs = append(p.dirs, os.DirFS(dir))
	}
	p.dirs = append(p.dirs, sub)
	return p, nil
}

// template returns the parsed policy text of version in lang, or nil.
func (p *policies) template(version, lang string) (*template.Template, error) {
	name := version + "." + lang + ".html"
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.cache[name]; ok {
		return t, nil
	}
	for _, d := range p.dirs {
		raw, err := fs.ReadFile(d, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("consent: read %s: %w", name, err)
		}
		t, err := template.New(name).Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("consent: template %s: %w", name, err)
		}
		p.cache[name] = t
		return t, nil
	}
	p.cache[name] = nil
	return nil, nil
}

// has reports whether version has a text in at least one language.
func (p *policies) has(version string) bool {
	if !consentVersionOK(version) {
		return false
	}
	for _, l := range languages {
		if t, err := p.template(version, l); err == nil && t != nil {
			return true
		}
	}
	return false
}

// consentVersionOK refuses versions that could name other files.
func consentVersionOK(v string) bool {
	return v != "" && !strings.ContainsAny(v, `/\`) && !strings.Contains(v, "..")
}

// render executes the policy text of version in the best language for
// the Accept-Language header, and returns it with the language used.
func (p *policies) render(version, acceptLanguage string) (template.HTML, string, error) {
	for _, lang := range negotiate(acceptLanguage) {
		t, err := p.template(version, lang)
		if err != nil {
			return "", "", err
		}
		if t == nil {
			continue
		}
		var b bytes.Buffer
		if err := t.Execute(&b, map[string]string{"Version": version, "Lang": lang}); err != nil {
			return "", "", fmt.Errorf("consent: render %s.%s: %w", version, lang, err)
		}
		return template.HTML(b.String()), lang, nil // the template's own HTML, escaped by html/template
	}
	return "", "", fmt.Errorf("consent: no policy text for version %s", version)
}

// negotiate orders aula's languages by the client's Accept-Language
// preferences (q-values honoured, region subtags ignored); languages the
// client did not name follow, English first.
func negotiate(header string) []string {
	type pref struct {
		lang string
		q    float64
		pos  int
	}
	var prefs []pref
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if primary == "" || q <= 0 {
			continue
		}
		prefs = append(prefs, pref{primary, q, i})
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	var out []string
	add := func(l string) {
		for _, have := range out {
			if have == l {
				return
			}
		}
		out = append(out, l)
	}
	for _, p := range prefs {
		for _, l := range languages {
			if p.lang == l {
				add(l)
			}
		}
	}
	for _, l := range languages {
		add(l)
	}
	return out
}
