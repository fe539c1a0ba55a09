package sealed

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	calls := 0
	secret := func(context.Context) ([]byte, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("database down")
		}
		return []byte("0123456789abcdef0123456789abcdef"), nil
	}
	s := New("aula test", secret)
	type state struct {
		User string `json:"u"`
		N    int    `json:"n"`
	}
	ctx := t.Context()
	if _, err := s.Seal(ctx, state{}); err == nil {
		t.Fatal("sealed without a key")
	}
	v, err := s.Seal(ctx, state{User: "@a:x", N: 7})
	if err != nil {
		t.Fatal(err)
	}
	var got state
	if err := s.Open(ctx, v, &got); err != nil || got != (state{"@a:x", 7}) {
		t.Fatalf("Open: %+v, %v", got, err)
	}
	body, mac, _ := strings.Cut(v, ".")
	other := New("aula other purpose", func(context.Context) ([]byte, error) {
		return []byte("0123456789abcdef0123456789abcdef"), nil // the same key
	})
	for name, bad := range map[string]string{
		"no dot":        body + mac,
		"altered body":  strings.Replace(body, body[:2], "ey", 1) + "x." + mac,
		"altered mac":   body + "." + mac[:len(mac)-2] + "AA",
		"empty":         "",
		"not base64":    "!!!." + mac,
		"other purpose": must(other.Seal(ctx, state{User: "@a:x", N: 7})),
	} {
		if err := s.Open(ctx, bad, &got); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if calls != 2 {
		t.Errorf("secret loaded %d times, want 2 (once failing, then kept)", calls)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
