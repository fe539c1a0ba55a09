package account

import "testing"

func TestValidMXC(t *testing.T) {
	for uri, want := range map[string]bool{
		"mxc://aula.test/AbC123_-x": true,
		"mxc://aula.test:8448/abc":  true,
		"mxc://[::1]:8448/abc":      true,
		"mxc://aula.test/abc.def":   true,
		"":                          false,
		"mxc://":                    false,
		"mxc://aula.test":           false,
		"mxc://aula.test/":          false,
		"mxc:///abc":                false,
		"mxc://aula.test/abc/def":   false,
		"mxc://aula.test/abc?x=1":   false,
		"mxc://aula.test/abc#frag":  false,
		"mxc://aula.test/a b":       false,
		"mxc://aula.test/a\x00b":    false,
		"mxc://aula test/abc":       false,
		"MXC://aula.test/abc":       false,
		"https://aula.test/abc":     false,
		" mxc://aula.test/abc":      false,
		"mxc://aula.test/abc\n":     false,
		"mxc:aula.test/abc":         false,
		"mxc://aula.test/abc\x7f":   false,
		"mxc://aula.test/" + "é":    true,
	} {
		if got := validMXC(uri); got != want {
			t.Errorf("validMXC(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestCheckAccountDataKey(t *testing.T) {
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'x'
	}
	for _, c := range []struct {
		room, typ string
		ok        bool
	}{
		{"", "m.direct", true},
		{"!r:aula.test", "m.tag", true},
		{"!xWg2_D8Jaa3XRJr-7OTYtQ3tjcPyObWUV0MxG_I4lMo", "m.tag", true},
		{"", string(long[:255]), true},
		{"", string(long), false},
		{"", "", false},
		{"r:aula.test", "m.tag", false},
		{"!r", "m.tag", false},
		{"!r:", "m.tag", false},
		{"!r:aula.test:notaport", "m.tag", false},
		{"!" + string(long) + ":aula.test", "m.tag", false},
	} {
		err := checkAccountDataKey(c.room, c.typ)
		if (err == nil) != c.ok {
			t.Errorf("checkAccountDataKey(%q, %q) = %v, want ok=%v", c.room, c.typ, err, c.ok)
		}
	}
}
