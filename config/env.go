package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Key is one leaf of the configuration tree.
type Key struct {
	Path string // dotted YAML path, e.g. "registration.shared_secret"
	Env  string // environment variable, e.g. "AULA_REGISTRATION_SHARED_SECRET"
}

// Keys lists every configuration key in declaration order.
func Keys() []Key {
	var keys []Key
	walk(reflect.ValueOf(Default()).Elem(), "", func(path string, _ reflect.Value) {
		keys = append(keys, Key{Path: path, Env: envName(path)})
	})
	return keys
}

func envName(path string) string {
	return "AULA_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

var durationType = reflect.TypeOf(Duration(0))

// walk calls fn for every leaf field of the struct v with its dotted path.
func walk(v reflect.Value, prefix string, fn func(path string, field reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			walk(f, path+".", fn)
			continue
		}
		fn(path, f)
	}
}

// applyEnv sets every key whose AULA_* variable is present.
func applyEnv(c *Config, lookup func(string) (string, bool)) error {
	var problems []string
	walk(reflect.ValueOf(c).Elem(), "", func(path string, f reflect.Value) {
		env := envName(path)
		val, ok := lookup(env)
		if !ok {
			return
		}
		if err := setFromString(f, val); err != nil {
			problems = append(problems, fmt.Sprintf("%s (from %s): %v", path, env, err))
		}
	})
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

func setFromString(f reflect.Value, val string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s, 5m or 1h", val)
		}
		f.SetInt(int64(d))
		return nil
	}
	// A list of sections (oidc_providers) is written as a YAML flow list,
	// e.g. [{id: uni, issuer: "https://…", client_id: aula}].
	if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
		v := reflect.New(f.Type())
		if err := yaml.Unmarshal([]byte(val), v.Interface()); err != nil {
			return fmt.Errorf("is not a YAML list of sections: %v", err)
		}
		f.Set(v.Elem())
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(val)
	case reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%q is not true or false", val)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", val)
		}
		f.SetInt(n)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(val, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
