package storage

import "testing"

func TestSearchText(t *testing.T) {
	for _, c := range []struct {
		typ, json, want string
	}{
		{"m.room.message", `{"content":{"body":"hello world","msgtype":"m.text"},"type":"m.room.message"}`, "hello world"},
		{"m.room.message", `{"content":{"body":"caf\u00e9 \"quoted\""}}`, `café "quoted"`},
		{"m.room.message", `{"content":{"body":42}}`, ""},
		{"m.room.message", `{"content":{"m.new_content":{"body":"nested"}}}`, ""},
		{"m.room.message", `{"content":{"Body":"wrong case"}}`, ""},
		{"m.room.message", `{"body":"top level","content":{}}`, ""},
		{"m.room.message", `{"content":{"body":"nul\u0000byte"}}`, ""},
		{"m.room.name", `{"content":{"name":"Lecture hall"}}`, "Lecture hall"},
		{"m.room.name", `{"content":{"body":"not a name"}}`, ""},
		{"m.room.topic", `{"content":{"topic":"plain"}}`, "plain"},
		{"m.room.topic", `{"content":{"topic":"old","m.topic":{"m.text":[{"mimetype":"text/html","body":"<b>x</b>"},{"body":"new"}]}}}`, "new"},
		{"m.room.encrypted", `{"content":{"body":"never"}}`, ""},
		{"m.reaction", `{"content":{"body":"never"}}`, ""},
	} {
		if got := searchText(c.typ, []byte(c.json)); got != c.want {
			t.Errorf("searchText(%s, %s) = %q, want %q", c.typ, c.json, got, c.want)
		}
	}
}
