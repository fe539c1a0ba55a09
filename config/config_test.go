package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// parseGenerated parses generated YAML the way Load does and validates it.
func parseGenerated(t *testing.T, raw []byte) *Config {
	t.Helper()
	c := Default()
	if err := Parse(raw, c); err != nil {
		t.Fatalf("Parse(generated): %v\n%s", err, raw)
	}
	c.fillDerived()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(generated): %v\n%s", err, raw)
	}
	return c
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name                               string
		opts                               GenerateOptions
		listen, baseURL, dataDir, database string // expected values
	}{
		{
			name:     "university",
			opts:     GenerateOptions{ServerName: "chat.uni.example"},
			listen:   "localhost:8008",
			baseURL:  "https://chat.uni.example/",
			dataDir:  "/var/lib/aula",
			database: "sqlite:/var/lib/aula/aula.db",
		},
		{
			name:     "localhost",
			opts:     GenerateOptions{ServerName: "localhost"},
			listen:   "localhost:8008",
			baseURL:  "http://localhost:8008/",
			dataDir:  "/var/lib/aula",
			database: "sqlite:/var/lib/aula/aula.db",
		},
		{
			name:     "localhost with port and wildcard listener",
			opts:     GenerateOptions{ServerName: "localhost:8448", Listen: ":9000"},
			listen:   ":9000",
			baseURL:  "http://localhost:9000/",
			dataDir:  "/var/lib/aula",
			database: "sqlite:/var/lib/aula/aula.db",
		},
		{
			name:     "server name with port is not in the base URL",
			opts:     GenerateOptions{ServerName: "chat.uni.example:8448", Listen: "0.0.0.0:8008"},
			listen:   "0.0.0.0:8008",
			baseURL:  "https://chat.uni.example/",
			dataDir:  "/var/lib/aula",
			database: "sqlite:/var/lib/aula/aula.db",
		},
		{
			name:     "IPv6 server name keeps its brackets",
			opts:     GenerateOptions{ServerName: "[2001:db8::1]:8448"},
			listen:   "localhost:8008",
			baseURL:  "https://[2001:db8::1]/",
			dataDir:  "/var/lib/aula",
			database: "sqlite:/var/lib/aula/aula.db",
		},
		{
			name:     "database option",
			opts:     GenerateOptions{ServerName: "chat.uni.example", Database: "postgres://aula:secret@db/aula?sslmode=disable"},
			listen:   "localhost:8008",
			baseURL:  "https://chat.uni.example/",
			dataDir:  "/var/lib/aula",
			database: "postgres://aula:secret@db/aula?sslmode=disable",
		},
		{
			name:     "data dir option moves the sqlite file",
			opts:     GenerateOptions{ServerName: "chat.uni.example", DataDir: "/srv/aula/"},
			listen:   "localhost:8008",
			baseURL:  "https://chat.uni.example/",
			dataDir:  "/srv/aula/",
			database: "sqlite:/srv/aula/aula.db",
		},
		{
			name:     "data dir needing YAML quoting",
			opts:     GenerateOptions{ServerName: "chat.uni.example", DataDir: `/srv/a\ula "x"`},
			listen:   "localhost:8008",
			baseURL:  "https://chat.uni.example/",
			dataDir:  `/srv/a\ula "x"`,
			database: `sqlite:/srv/a\ula "x"/aula.db`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Generate(tt.opts)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			c := parseGenerated(t, raw)
			got := []string{c.ServerName, c.Listen, c.PublicBaseURL, c.DataDir, c.Database}
			want := []string{tt.opts.ServerName, tt.listen, tt.baseURL, tt.dataDir, tt.database}
			if !slices.Equal(got, want) {
				t.Errorf("server_name, listen, public_baseurl, data_dir, database =\n  %q\nwant\n  %q", got, want)
			}
			if len(c.Registration.SharedSecret) < 16 {
				t.Errorf("shared_secret %q is shorter than 16", c.Registration.SharedSecret)
			}
			if c.Registration.Enabled {
				t.Error("generated config opens registration")
			}
			// Apart from what the options and the secret set, the file
			// holds the defaults.
			d := Default()
			d.ServerName, d.Listen, d.PublicBaseURL, d.DataDir, d.Database, d.SigningKeyPath = c.ServerName, c.Listen, c.PublicBaseURL, c.DataDir, c.Database, c.SigningKeyPath
			d.Registration.SharedSecret = c.Registration.SharedSecret
			d.Registration.Tokens = []string{}
			d.HTTP.TrustedProxies = []string{}
			if !reflect.DeepEqual(c, d) {
				t.Errorf("generated config differs from the defaults:\n got %+v\nwant %+v", c, d)
			}
		})
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts GenerateOptions
		want string
	}{
		{"no server name", GenerateOptions{}, "server_name"},
		{"bad server name", GenerateOptions{ServerName: "bad name!"}, "server_name"},
		{"bad listen", GenerateOptions{ServerName: "localhost", Listen: "nope"}, "listen"},
		{"bad database", GenerateOptions{ServerName: "chat.uni.example", Database: "mysql://x"}, "database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Generate(tt.opts)
			if err == nil {
				t.Fatalf("Generate(%+v) succeeded:\n%s", tt.opts, raw)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func TestGenerateFreshSecret(t *testing.T) {
	secret := func() string {
		raw, err := Generate(GenerateOptions{ServerName: "chat.uni.example"})
		if err != nil {
			t.Fatal(err)
		}
		return parseGenerated(t, raw).Registration.SharedSecret
	}
	a, b := secret(), secret()
	if a == b {
		t.Errorf("two Generate calls gave the same shared secret %q", a)
	}
}

// yamlKeys maps the dotted path of every key in a YAML mapping tree to its
// key node.
func yamlKeys(n *yaml.Node, prefix string, out map[string]*yaml.Node) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			yamlKeys(c, prefix, out)
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		out[prefix+k.Value] = k
		yamlKeys(v, prefix+k.Value+".", out)
	}
}

func TestGenerateHasEveryKey(t *testing.T) {
	raw, err := Generate(GenerateOptions{ServerName: "chat.uni.example"})
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	found := map[string]*yaml.Node{}
	yamlKeys(&doc, "", found)

	leaves := map[string]bool{}
	for _, k := range Keys() {
		leaves[k.Path] = true
		n, ok := found[k.Path]
		if !ok {
			t.Errorf("key %s is missing from the generated config", k.Path)
			continue
		}
		wantCol := 1 + 2*strings.Count(k.Path, ".")
		if n.Column != wantCol {
			t.Errorf("key %s is at column %d, want %d", k.Path, n.Column, wantCol)
		}
	}
	// The other way round: nothing but the keys and their sections.
	for path := range found {
		if leaves[path] {
			continue
		}
		isSection := slices.ContainsFunc(Keys(), func(k Key) bool { return strings.HasPrefix(k.Path, path+".") })
		if !isSection {
			t.Errorf("generated config has key %s that Keys() does not list", path)
		}
	}
}

// TestGenerateDocumentsEveryKey enforces that every key in the generated
// file has a comment above it; a section header counts as documented when
// its first key is.
func TestGenerateDocumentsEveryKey(t *testing.T) {
	for _, name := range []string{"chat.uni.example", "localhost"} {
		raw, err := Generate(GenerateOptions{ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		commented := func(i int) bool { // the line before lines[i], skipping blank lines
			for j := i - 1; j >= 0; j-- {
				if s := strings.TrimSpace(lines[j]); s != "" {
					return strings.HasPrefix(s, "#")
				}
			}
			return false
		}
		keys := 0
		for i, line := range lines {
			s := strings.TrimSpace(line)
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			key, rest, ok := strings.Cut(s, ":")
			if !ok {
				t.Errorf("line %d %q is neither a key nor a comment", i+1, line)
				continue
			}
			keys++
			if commented(i) {
				continue
			}
			if strings.TrimSpace(rest) == "" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  #") {
				continue // section header whose first child is commented
			}
			t.Errorf("%s: key %s on line %d has no comment above it", name, key, i+1)
		}
		if keys < len(Keys()) {
			t.Errorf("%s: found %d key lines, want at least %d", name, keys, len(Keys()))
		}
	}
}

func TestKeys(t *testing.T) {
	keys := Keys()
	want := map[string]string{
		"server_name":                  "AULA_SERVER_NAME",
		"database":                     "AULA_DATABASE",
		"public_baseurl":               "AULA_PUBLIC_BASEURL",
		"registration.shared_secret":   "AULA_REGISTRATION_SHARED_SECRET",
		"registration.tokens":          "AULA_REGISTRATION_TOKENS",
		"password_login.bcrypt_cost":   "AULA_PASSWORD_LOGIN_BCRYPT_COST",
		"login.access_token_lifetime":  "AULA_LOGIN_ACCESS_TOKEN_LIFETIME",
		"login.refresh_token_lifetime": "AULA_LOGIN_REFRESH_TOKEN_LIFETIME",
		"http.max_request_bytes":       "AULA_HTTP_MAX_REQUEST_BYTES",
		"log.ip_addresses":             "AULA_LOG_IP_ADDRESSES",
		"presence.enabled":             "AULA_PRESENCE_ENABLED",
	}
	paths, envs := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		if paths[k.Path] || envs[k.Env] {
			t.Errorf("duplicate key %s / %s", k.Path, k.Env)
		}
		paths[k.Path], envs[k.Env] = true, true
		if w, ok := want[k.Path]; ok && k.Env != w {
			t.Errorf("%s: env %s, want %s", k.Path, k.Env, w)
		}
	}
	for p := range want {
		if !paths[p] {
			t.Errorf("Keys() lacks %s", p)
		}
	}
	if keys[0].Path != "server_name" {
		t.Errorf("first key %s, want server_name (declaration order)", keys[0].Path)
	}
}

func fakeEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(c *Config) // edits Default() into the expected result
	}{
		{"nothing set", nil, func(c *Config) {}},
		{
			"unrelated variables are ignored",
			map[string]string{"AULA_NOPE": "x", "DATABASE": "postgres://x", "aula_database": "sqlite:x"},
			func(c *Config) {},
		},
		{
			"database",
			map[string]string{"AULA_DATABASE": "postgres://aula@db/aula"},
			func(c *Config) { c.Database = "postgres://aula@db/aula" },
		},
		{
			"shared secret",
			map[string]string{"AULA_REGISTRATION_SHARED_SECRET": "0123456789abcdef0123"},
			func(c *Config) { c.Registration.SharedSecret = "0123456789abcdef0123" },
		},
		{
			"registration enabled",
			map[string]string{"AULA_REGISTRATION_ENABLED": "true"},
			func(c *Config) { c.Registration.Enabled = true },
		},
		{
			"password login disabled",
			map[string]string{"AULA_PASSWORD_LOGIN_ENABLED": "false"},
			func(c *Config) { c.PasswordLogin.Enabled = false },
		},
		{
			"bcrypt cost",
			map[string]string{"AULA_PASSWORD_LOGIN_BCRYPT_COST": "10"},
			func(c *Config) { c.PasswordLogin.BcryptCost = 10 },
		},
		{
			"access token lifetime",
			map[string]string{"AULA_LOGIN_ACCESS_TOKEN_LIFETIME": "10m"},
			func(c *Config) { c.Login.AccessTokenLifetime = Duration(10 * time.Minute) },
		},
		{
			"presence disabled",
			map[string]string{"AULA_PRESENCE_ENABLED": "false"},
			func(c *Config) { c.Presence.Enabled = false },
		},
		{
			"max request bytes",
			map[string]string{"AULA_HTTP_MAX_REQUEST_BYTES": "2097152"},
			func(c *Config) { c.HTTP.MaxRequestBytes = 2 << 20 },
		},
		{
			"tokens",
			map[string]string{"AULA_REGISTRATION_TOKENS": "a,b"},
			func(c *Config) { c.Registration.Tokens = []string{"a", "b"} },
		},
		{
			"tokens with spaces and empty items",
			map[string]string{"AULA_REGISTRATION_TOKENS": " a , b,,"},
			func(c *Config) { c.Registration.Tokens = []string{"a", "b"} },
		},
		{
			"empty tokens clears the list",
			map[string]string{"AULA_REGISTRATION_TOKENS": ""},
			func(c *Config) { c.Registration.Tokens = nil },
		},
		{
			"several at once",
			map[string]string{"AULA_SERVER_NAME": "chat.uni.example", "AULA_LOG_FORMAT": "json", "AULA_LOG_IP_ADDRESSES": "1"},
			func(c *Config) { c.ServerName, c.Log.Format, c.Log.IPAddresses = "chat.uni.example", "json", true },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Default()
			got.Registration.Tokens = []string{"old"}
			if err := applyEnv(got, fakeEnv(tt.env)); err != nil {
				t.Fatalf("applyEnv: %v", err)
			}
			want := Default()
			want.Registration.Tokens = []string{"old"}
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestApplyEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // each problem's key path and env var
	}{
		{"bool", map[string]string{"AULA_REGISTRATION_ENABLED": "yes please"}, []string{"registration.enabled", "AULA_REGISTRATION_ENABLED", "yes please"}},
		{"int", map[string]string{"AULA_PASSWORD_LOGIN_BCRYPT_COST": "twelve"}, []string{"password_login.bcrypt_cost", "AULA_PASSWORD_LOGIN_BCRYPT_COST", "twelve"}},
		{"int64", map[string]string{"AULA_HTTP_MAX_REQUEST_BYTES": "1MB"}, []string{"http.max_request_bytes", "AULA_HTTP_MAX_REQUEST_BYTES"}},
		{"duration without unit", map[string]string{"AULA_LOGIN_ACCESS_TOKEN_LIFETIME": "10"}, []string{"login.access_token_lifetime", "AULA_LOGIN_ACCESS_TOKEN_LIFETIME"}},
		{"duration", map[string]string{"AULA_HTTP_SHUTDOWN_TIMEOUT": "soon"}, []string{"http.shutdown_timeout", "AULA_HTTP_SHUTDOWN_TIMEOUT"}},
		{
			"all problems at once",
			map[string]string{"AULA_REGISTRATION_ENABLED": "maybe", "AULA_LOGIN_REFRESH_TOKEN_LIFETIME": "1 day", "AULA_DATABASE": "fine"},
			[]string{"registration.enabled", "AULA_REGISTRATION_ENABLED", "login.refresh_token_lifetime", "AULA_LOGIN_REFRESH_TOKEN_LIFETIME"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := applyEnv(Default(), fakeEnv(tt.env))
			if err == nil {
				t.Fatal("applyEnv succeeded")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not *Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// TestApplyEnvEveryKey sets every key from the environment, so that no key
// has a type the environment cannot express.
func TestApplyEnvEveryKey(t *testing.T) {
	type value struct {
		env  string
		want any
	}
	values := map[reflect.Type]value{
		reflect.TypeOf(""):          {"text", "text"},
		reflect.TypeOf(true):        {"true", true},
		reflect.TypeOf(0):           {"7", 7},
		reflect.TypeOf(int64(0)):    {"70000", int64(70000)},
		reflect.TypeOf([]string{}):  {"x,y", []string{"x", "y"}},
		reflect.TypeOf(Duration(0)): {"42s", Duration(42 * time.Second)},
		// oidc_providers: a YAML flow list of sections.
		reflect.TypeOf([]OIDCProvider{}): {"[{id: uni, client_id: aula}]", []OIDCProvider{{ID: "uni", ClientID: "aula"}}},
	}
	env := map[string]string{}
	walk(reflect.ValueOf(Default()).Elem(), "", func(path string, f reflect.Value) {
		v, ok := values[f.Type()]
		if !ok {
			t.Errorf("%s has type %s; add it to this test and to setFromString", path, f.Type())
		}
		env[envName(path)] = v.env
	})
	c := Default()
	if err := applyEnv(c, fakeEnv(env)); err != nil {
		t.Fatal(err)
	}
	walk(reflect.ValueOf(c).Elem(), "", func(path string, f reflect.Value) {
		if want := values[f.Type()].want; !reflect.DeepEqual(f.Interface(), want) {
			t.Errorf("%s = %#v after %s=%s, want %#v", path, f.Interface(), envName(path), env[envName(path)], want)
		}
	})
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "aula.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want func(c *Config) // edits Default() after fillDerived
	}{
		{
			name: "empty file plus server name from the environment",
			file: "",
			env:  map[string]string{"AULA_SERVER_NAME": "chat.uni.example"},
			want: func(c *Config) {
				c.ServerName = "chat.uni.example"
				c.Database = "sqlite:aula-data/aula.db"
				c.SigningKeyPath = "aula-data/signing.key"
				c.PublicBaseURL = "http://localhost:8008/"
			},
		},
		{
			name: "comments only",
			file: "# nothing here yet\n",
			env:  map[string]string{"AULA_SERVER_NAME": "chat.uni.example"},
			want: func(c *Config) {
				c.ServerName = "chat.uni.example"
				c.Database = "sqlite:aula-data/aula.db"
				c.SigningKeyPath = "aula-data/signing.key"
				c.PublicBaseURL = "http://localhost:8008/"
			},
		},
		{
			name: "file values and derived defaults",
			file: "server_name: chat.uni.example\nlisten: \":8008\"\ndata_dir: /srv/aula\nlogin:\n  access_token_lifetime: 1h\n",
			want: func(c *Config) {
				c.ServerName = "chat.uni.example"
				c.Listen = ":8008"
				c.DataDir = "/srv/aula"
				c.Database = "sqlite:/srv/aula/aula.db"
				c.SigningKeyPath = "/srv/aula/signing.key"
				c.PublicBaseURL = "http://localhost:8008/"
				c.Login.AccessTokenLifetime = Duration(time.Hour)
			},
		},
		{
			name: "environment overrides the file",
			file: "server_name: chat.uni.example\npublic_baseurl: https://matrix.uni.example\ndatabase: sqlite:/a.db\nregistration:\n  enabled: false\n",
			env: map[string]string{
				"AULA_DATABASE":             "postgres://aula@db/aula",
				"AULA_REGISTRATION_ENABLED": "true",
			},
			want: func(c *Config) {
				c.ServerName = "chat.uni.example"
				c.PublicBaseURL = "https://matrix.uni.example/"
				c.Database = "postgres://aula@db/aula"
				c.SigningKeyPath = "aula-data/signing.key"
				c.Registration.Enabled = true
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range Keys() {
				if _, ok := os.LookupEnv(k.Env); ok {
					t.Setenv(k.Env, "")
					os.Unsetenv(k.Env) // restored by t.Setenv's cleanup
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load(writeFile(t, tt.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			tt.want(want)
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestLoadGenerated(t *testing.T) {
	raw, err := Generate(GenerateOptions{ServerName: "chat.uni.example", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, string(raw))
	if _, err := Load(p); err != nil {
		t.Fatalf("Load(generated): %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{"unknown key", "server_name: chat.uni.example\nlisten: localhost:8008\nbogus_key: 1\n", nil, []string{"bogus_key", "line 3"}},
		{"unknown nested key", "server_name: chat.uni.example\nregistration:\n  enable: true\n", nil, []string{"enable", "line 3"}},
		{"type error", "server_name: chat.uni.example\nlisten: [1]\n", nil, []string{"listen (line 2)", "expected a string"}},
		{"bad duration", "login:\n  access_token_lifetime: 5\n", nil, []string{"line 2", `"5" is not a duration`}},
		{"syntax error", "server_name: [\n", nil, []string{"line"}},
		{"second document", "server_name: chat.uni.example\n---\nbogus: 1\n", nil, []string{"line 2", "second YAML document"}},
		{"bad env value", "server_name: chat.uni.example\n", map[string]string{"AULA_PASSWORD_LOGIN_BCRYPT_COST": "lots"}, []string{"password_login.bcrypt_cost", "AULA_PASSWORD_LOGIN_BCRYPT_COST"}},
		{"invalid values", "listen: nope\nlog:\n  level: loud\n", nil, []string{"server_name", "listen", "log.level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p := writeFile(t, tt.file)
			_, err := Load(p)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope.yaml")
		if _, err := Load(p); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Load(missing) = %v, want a not-exist error", err)
		}
	})
}

func TestParseRefusesUnknownKeys(t *testing.T) {
	c := Default()
	err := Parse([]byte("log:\n  level: info\n  colour: true\n"), c)
	if err == nil || !strings.Contains(err.Error(), "colour") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Parse = %v, want an error naming colour on line 3", err)
	}
	if strings.HasPrefix(err.Error(), "yaml:") {
		t.Errorf("error %q keeps the yaml: prefix", err)
	}
}

func TestParseDocuments(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"", false},
		{"\n", false},
		{"# only a comment\n", false},
		{"---\nlisten: x:1\n", false},
		{"listen: x:1\n...\n", false},
		{"listen: x:1\n---\n", false},
		{"listen: x:1\n---\n~\n", false},
		{"listen: x:1\n---\nlisten: y:1\n", true},
		{"listen: x:1\n---\nbogus: 1\n", true},
		{"listen: x:1\n---\n[\n", true},
	}
	for _, tt := range tests {
		c := Default()
		err := Parse([]byte(tt.in), c)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q) = %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Dev()
	c.ServerName = "bad name!"
	c.Listen = "nope"
	c.PublicBaseURL = "ftp://x"
	c.Database = "mysql://"
	c.Log.Level = "loud"
	c.Log.Format = "xml"
	c.PasswordLogin.BcryptCost = 2
	c.Rooms.DefaultVersion = "9"
	c.HTTP.MaxRequestBytes = 10
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	keys := []string{"server_name", "listen", "public_baseurl", "database", "log.level", "log.format", "password_login.bcrypt_cost", "rooms.default_version", "http.max_request_bytes"}
	for _, k := range keys {
		if !strings.Contains(err.Error(), k+":") {
			t.Errorf("error does not name %s:\n%v", k, err)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not *Error", err)
	}
	if len(ce.Problems) != len(keys) {
		t.Errorf("%d problems, want %d:\n%v", len(ce.Problems), len(keys), err)
	}
	if !strings.HasPrefix(err.Error(), "config: 9 problems:\n  ") {
		t.Errorf("error text %q lacks the problem count header", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		bad  string // the one key reported, "" when valid
	}{
		{"dev is valid", func(c *Config) {}, ""},
		{"postgres URL", func(c *Config) { c.Database = "postgres://aula@db/aula" }, ""},
		{"postgresql URL", func(c *Config) { c.Database = "postgresql://aula@db/aula" }, ""},
		{"postgres key=value", func(c *Config) { c.Database = "postgres:host=db user=aula" }, ""},
		{"wildcard listen", func(c *Config) { c.Listen = ":8008" }, ""},
		{"zero lifetimes", func(c *Config) { c.Login.AccessTokenLifetime, c.Login.RefreshTokenLifetime = 0, 0 }, ""},
		{"good tokens", func(c *Config) { c.Registration.Tokens = []string{"abc", "A.b_c~d-9"} }, ""},
		{"good secret", func(c *Config) { c.Registration.SharedSecret = "0123456789abcdef" }, ""},
		{"every room version", func(c *Config) { c.Rooms.DefaultVersion = "12" }, ""},
		{"bcrypt bounds", func(c *Config) { c.PasswordLogin.BcryptCost = 4 }, ""},
		{"no server name", func(c *Config) { c.ServerName = "" }, "server_name"},
		{"listen without port", func(c *Config) { c.Listen = "localhost:" }, "listen"},
		{"base URL without host", func(c *Config) { c.PublicBaseURL = "http://:8008/" }, "public_baseurl"},
		{"base URL not a URL", func(c *Config) { c.PublicBaseURL = "localhost:8008" }, "public_baseurl"},
		{"empty sqlite path", func(c *Config) { c.Database = "sqlite:" }, "database"},
		{"no database", func(c *Config) { c.Database = "" }, "database"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"short secret", func(c *Config) { c.Registration.SharedSecret = "short" }, "registration.shared_secret"},
		{"empty token", func(c *Config) { c.Registration.Tokens = []string{""} }, "registration.tokens"},
		{"token with space", func(c *Config) { c.Registration.Tokens = []string{"a b"} }, "registration.tokens"},
		{"long token", func(c *Config) { c.Registration.Tokens = []string{strings.Repeat("a", 65)} }, "registration.tokens"},
		{"bcrypt too high", func(c *Config) { c.PasswordLogin.BcryptCost = 32 }, "password_login.bcrypt_cost"},
		{"access lifetime too short", func(c *Config) { c.Login.AccessTokenLifetime = Duration(5 * time.Second) }, "login.access_token_lifetime"},
		{"negative access lifetime", func(c *Config) { c.Login.AccessTokenLifetime = Duration(-time.Minute) }, "login.access_token_lifetime"},
		{"negative refresh lifetime", func(c *Config) { c.Login.RefreshTokenLifetime = Duration(-time.Minute) }, "login.refresh_token_lifetime"},
		{"negative shutdown timeout", func(c *Config) { c.HTTP.ShutdownTimeout = Duration(-time.Second) }, "http.shutdown_timeout"},
		{"request limit below one event", func(c *Config) { c.HTTP.MaxRequestBytes = 65535 }, "http.max_request_bytes"},
		{"trusted proxy not an address", func(c *Config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"} }, "http.trusted_proxies"},
		{"trusted proxies valid", func(c *Config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "::1", "127.0.0.1"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Dev()
			tt.edit(c)
			err := c.Validate()
			if tt.bad == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want *Error naming %s", err, tt.bad)
			}
			if len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0], tt.bad+": ") {
				t.Errorf("problems %q, want one for %s", ce.Problems, tt.bad)
			}
			if want := "config: " + ce.Problems[0]; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		})
	}
}

func TestDev(t *testing.T) {
	c := Dev()
	if c.ServerName != "localhost" {
		t.Errorf("server_name %q", c.ServerName)
	}
	if c.Listen != "localhost:8008" {
		t.Errorf("listen %q", c.Listen)
	}
	if c.PublicBaseURL != "http://localhost:8008/" {
		t.Errorf("public_baseurl %q", c.PublicBaseURL)
	}
	path, ok := strings.CutPrefix(c.Database, "sqlite:")
	if !ok {
		t.Fatalf("database %q is not SQLite", c.Database)
	}
	if rel, err := filepath.Rel("aula-data", path); err != nil || filepath.IsAbs(path) || strings.HasPrefix(rel, "..") || rel != "aula.db" {
		t.Errorf("database %q is not aula.db under ./aula-data", c.Database)
	}
	if !c.Registration.Enabled {
		t.Error("registration is closed")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestFillDerived(t *testing.T) {
	tests := []struct {
		name                             string
		listen, baseURL, dataDir, db     string
		wantBaseURL, wantDB, wantDataDir string
	}{
		{name: "defaults", listen: "localhost:8008", dataDir: "./aula-data",
			wantBaseURL: "http://localhost:8008/", wantDB: "sqlite:aula-data/aula.db"},
		{name: "wildcard listen", listen: ":8008", dataDir: "/srv/aula",
			wantBaseURL: "http://localhost:8008/", wantDB: "sqlite:/srv/aula/aula.db"},
		{name: "IPv4 wildcard", listen: "0.0.0.0:9000", dataDir: "/srv/aula",
			wantBaseURL: "http://localhost:9000/", wantDB: "sqlite:/srv/aula/aula.db"},
		{name: "IPv6 wildcard", listen: "[::]:9000", dataDir: "/srv/aula",
			wantBaseURL: "http://localhost:9000/", wantDB: "sqlite:/srv/aula/aula.db"},
		{name: "IPv6 loopback", listen: "[::1]:9000", dataDir: "/srv/aula",
			wantBaseURL: "http://[::1]:9000/", wantDB: "sqlite:/srv/aula/aula.db"},
		{name: "explicit values win", listen: "localhost:8008", baseURL: "https://m.uni.example", dataDir: "/srv/aula", db: "postgres://db/aula",
			wantBaseURL: "https://m.uni.example/", wantDB: "postgres://db/aula"},
		{name: "base URL keeps its slash", listen: "localhost:8008", baseURL: "https://m.uni.example/matrix/", dataDir: "/srv/aula",
			wantBaseURL: "https://m.uni.example/matrix/", wantDB: "sqlite:/srv/aula/aula.db"},
		{name: "no data dir, no database", listen: "localhost:8008",
			wantBaseURL: "http://localhost:8008/", wantDB: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Listen: tt.listen, PublicBaseURL: tt.baseURL, DataDir: tt.dataDir, Database: tt.db}
			c.fillDerived()
			if c.PublicBaseURL != tt.wantBaseURL || c.Database != tt.wantDB {
				t.Errorf("public_baseurl, database = %q, %q; want %q, %q", c.PublicBaseURL, c.Database, tt.wantBaseURL, tt.wantDB)
			}
		})
	}
}

func TestPublicBaseURL(t *testing.T) {
	tests := []struct{ serverName, listen, want string }{
		{"chat.uni.example", "localhost:8008", "https://chat.uni.example/"},
		{"chat.uni.example:8448", "localhost:8008", "https://chat.uni.example/"},
		{"chat.uni.example", "nope", "https://chat.uni.example/"},
		{"localhost", "localhost:8008", "http://localhost:8008/"},
		{"localhost", ":8008", "http://localhost:8008/"},
		{"localhost", "127.0.0.1:8008", "http://127.0.0.1:8008/"},
		{"127.0.0.1", "0.0.0.0:80", "http://localhost:80/"},
		{"[::1]:8448", "[::1]:8008", "http://[::1]:8008/"},
		{"[2001:db8::1]", "localhost:8008", "https://[2001:db8::1]/"},
		{"[2001:db8::1]:8448", "localhost:8008", "https://[2001:db8::1]/"},
	}
	for _, tt := range tests {
		if got := publicBaseURL(tt.serverName, tt.listen); got != tt.want {
			t.Errorf("publicBaseURL(%q, %q) = %q, want %q", tt.serverName, tt.listen, got, tt.want)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	type doc struct {
		D Duration `yaml:"d"`
	}
	tests := []struct {
		d    time.Duration
		text string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{5 * time.Minute, "5m0s"},
		{time.Hour, "1h0m0s"},
		{1500 * time.Millisecond, "1.5s"},
		{-time.Second, "-1s"},
	}
	for _, tt := range tests {
		out, err := yaml.Marshal(doc{Duration(tt.d)})
		if err != nil {
			t.Fatalf("Marshal(%v): %v", tt.d, err)
		}
		if want := "d: " + tt.text + "\n"; string(out) != want {
			t.Errorf("Marshal(%v) = %q, want %q", tt.d, out, want)
		}
		var back doc
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("Unmarshal(%q): %v", out, err)
		}
		if back.D.D() != tt.d {
			t.Errorf("round trip of %v gave %v", tt.d, back.D.D())
		}
		if Duration(tt.d).String() != tt.text {
			t.Errorf("String() = %q, want %q", Duration(tt.d).String(), tt.text)
		}
	}

	for _, in := range []string{"d: 10m", "d: \"10m\"", "d: 600s"} {
		var got doc
		if err := yaml.Unmarshal([]byte(in), &got); err != nil || got.D.D() != 10*time.Minute {
			t.Errorf("Unmarshal(%q) = %v, %v; want 10m", in, got.D, err)
		}
	}
	for _, in := range []string{"d: 5", "d: soon", "d: [1m]", "d: {a: 1}"} {
		var got doc
		err := yaml.Unmarshal([]byte("\n"+in), &got)
		if err == nil || !strings.Contains(err.Error(), "duration like") {
			t.Errorf("Unmarshal(%q) = %v, want a duration error", in, err)
		}
	}
}
