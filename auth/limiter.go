package auth

import (
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

// limitExceeded is the 429 for a wait of d, rounded up to whole
// milliseconds so that a client waiting exactly that long gets through.
func limitExceeded(d time.Duration) error {
	return mxerr.LimitExceeded(int64((d + time.Millisecond - 1) / time.Millisecond))
}
