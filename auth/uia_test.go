package auth

import "testing"

func TestFlowComplete(t *testing.T) {
	flows := []Flow{{Stages: []string{"a", "b"}}, {Stages: []string{"c"}}}
	for _, c := range []struct {
		completed []string
		want      bool
	}{
		{nil, false},
		{[]string{"a"}, false},
		{[]string{"b", "a"}, true},
		{[]string{"c"}, true},
		{[]string{"d"}, false},
	} {
		if got := flowComplete(flows, c.completed); got != c.want {
			t.Errorf("flowComplete(%v) = %v, want %v", c.completed, got, c.want)
		}
	}
	if flowComplete(nil, []string{"a"}) || flowComplete([]Flow{}, nil) {
		t.Errorf("no flows can never be complete")
	}
	if !stageOffered(flows, "c") || stageOffered(flows, "m.login.dummy") {
		t.Errorf("stageOffered is wrong")
	}
}

func TestValidText(t *testing.T) {
	for s, want := range map[string]bool{"": true, "DEVICE": true, "ünï©ødé": true, "a\x00b": false, "a\xffb": false} {
		if got := validText(s); got != want {
			t.Errorf("validText(%q) = %v, want %v", s, got, want)
		}
	}
}
