package auth

import (
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

func TestLimitExceededRoundsUp(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 2},
		{time.Nanosecond, 1},
		{12 * time.Second, 12000},
	} {
		e, _ := mxerr.As(limitExceeded(c.d))
		if e.Status != 429 || e.Code != "M_LIMIT_EXCEEDED" || e.Extra["retry_after_ms"] != c.want {
			t.Errorf("limitExceeded(%v) = %d %s %v, want 429 M_LIMIT_EXCEEDED retry_after_ms %d", c.d, e.Status, e.Code, e.Extra, c.want)
		}
	}
}
