package syncapi

import (
	"strconv"
	"strings"

	"github.com/aula-chat/aula/internal/mxerr"
)

// Token is a /sync position: the global stream position everything stored
// is numbered by, the serial of the typing tracker (typing is memory
// only), and, when the response that handed it out carried to-device
// messages, the to-device position: the device was sent its messages up to
// there, which is Pos unless the batch was cut at its limit (todevice.go).
// The next sync with the token acknowledges those messages. Its text form
// is "s<pos>_<typing>", or "s<pos>_<typing>_<todevice>" with a to-device
// position; "s<pos>" alone is accepted too. It stays valid across
// restarts: stream positions are stored, and a typing serial from another
// run makes the tracker report every room. /messages accepts it as a
// pagination token; it reads only the stream position.
type Token struct {
	Pos    int64
	Typing int64
	// ToDeviceAck is set when the token has a to-device position: there
	// are to-device messages for the next sync to acknowledge.
	ToDeviceAck bool
	// ToDeviceLag is how far the to-device position lies below Pos (0
	// unless a batch of to-device messages was cut).
	ToDeviceLag int64
}

// ToDevice is the position up to which the device has been sent its
// to-device messages.
func (t Token) ToDevice() int64 { return t.Pos - t.ToDeviceLag }

// withToDevice returns t with the to-device position pos (at most t.Pos).
func (t Token) withToDevice(pos int64) Token {
	t.ToDeviceAck = true
	t.ToDeviceLag = t.Pos - min(pos, t.Pos)
	return t
}

// String is the token's text form.
func (t Token) String() string {
	s := "s" + strconv.FormatInt(t.Pos, 10) + "_" + strconv.FormatInt(t.Typing, 10)
	if t.ToDeviceAck || t.ToDeviceLag != 0 {
		s += "_" + strconv.FormatInt(t.ToDevice(), 10)
	}
	return s
}

// ParseToken reads a token's text form. Anything else, or a to-device
// position above the stream position, is 400 M_INVALID_PARAM.
func ParseToken(s string) (Token, error) {
	bad := mxerr.InvalidParam("Invalid since token %q", s)
	rest, ok := strings.CutPrefix(s, "s")
	if !ok {
		return Token{}, bad
	}
	parts := strings.Split(rest, "_")
	if len(parts) > 3 {
		return Token{}, bad
	}
	var n [3]int64
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return Token{}, bad
		}
		n[i] = v
	}
	t := Token{Pos: n[0], Typing: n[1]}
	if len(parts) == 3 {
		if n[2] > t.Pos {
			return Token{}, bad
		}
		t = t.withToDevice(n[2])
	}
	return t, nil
}
