package ids

import (
	"strings"
	"testing"
)

func TestValidServerName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"example.org", true},
		{"example.org:8448", true},
		{"localhost", true},
		{"Chat-1.Uni.Example", true},
		{"1.2.3.4", true},
		{"1.2.3.4:8448", true},
		{"[::1]", true},
		{"[::1]:8448", true},
		{"[2001:db8::1]:1", true},
		{"", false},
		{"a b", false},
		{"bad name!", false},
		{"ex:ample:1", false},
		{"host:99999999", false},
		{"host:", false},
		{"host:80a", false},
		{":8448", false},
		{"::1", false},
		{"[::1", false},
		{"[::1]:", false},
		{"[not-ip]", false},
		{"[1.2.3.4]", false},
		{"ex_ample.org", false},
		{"münchen.de", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		if got := ValidServerName(tt.name); got != tt.ok {
			t.Errorf("ValidServerName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestValidUserAndRoomID(t *testing.T) {
	for _, tt := range []struct {
		id         string
		user, room bool
	}{
		{"@alice:example.org", true, false},
		{"@alice:example.org:8448", true, false},
		{"@alice", false, false},
		{"alice:example.org", false, false},
		{"@alice:bad name", false, false},
		{"!abc:example.org", false, true},
		{"!" + strings.Repeat("A", 43), false, true},
		{"!" + strings.Repeat("A", 42), false, false},
		{"!" + strings.Repeat("+", 43), false, false},
		{"!abc", false, false},
		{"#room:example.org", false, false},
	} {
		if got := ValidUserID(tt.id); got != tt.user {
			t.Errorf("ValidUserID(%q) = %v, want %v", tt.id, got, tt.user)
		}
		if got := ValidRoomID(tt.id); got != tt.room {
			t.Errorf("ValidRoomID(%q) = %v, want %v", tt.id, got, tt.room)
		}
	}
}
