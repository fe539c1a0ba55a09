package syncapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Send-to-device limits.
const (
	// toDeviceBatch is the most to-device messages one /sync response
	// carries (the spec recommends 100, Synapse's limit too).
	toDeviceBatch = 100
	// maxInbox is the most messages a device's inbox keeps; beyond it the
	// oldest are dropped, so that a device that never syncs cannot make
	// its inbox grow without bound.
	maxInbox = 10000
	// maxToDeviceBytes is the largest content of one message, as Synapse
	// (a to-device message must fit a federation EDU).
	maxToDeviceBytes = 65536
	// maxEventTypeBytes is the spec's size limit of an event type.
	maxEventTypeBytes = 255
)

// ToDeviceRequest is one PUT /sendToDevice/{eventType}/{txnId}.
type ToDeviceRequest struct {
	Sender       string
	SenderDevice string
	Type         string
	TxnID        string
	// Messages maps user ID → device ID (or "*") → content. A nil device
	// map stands for JSON null, which is rejected.
	Messages map[string]map[string]json.RawMessage
}

// SendToDevice stores a to-device message for each device named, or for
// every device of a user for "*" (an explicit entry for a device wins over
// "*"). Messages to unknown users or devices, and to users of other
// servers (aula does not federate), are dropped silently: the spec
// defines no error for them, and Synapse answers 200 too. Invalid user IDs
// are skipped, as Synapse does. A repeated transaction ID of the sending
// device for the same event type stores nothing and succeeds. It returns
// the inboxes that were full and lost old messages, for the caller to log.
func (s *Service) SendToDevice(ctx context.Context, req ToDeviceRequest) ([]storage.InboxOverflow, error) {
	if req.Type == "" || len(req.Type) > maxEventTypeBytes {
		return nil, mxerr.InvalidParam("Event type must be 1 to %d bytes", maxEventTypeBytes)
	}
	msgs := make(map[string]map[string]json.RawMessage, len(req.Messages))
	for userID, byDevice := range req.Messages {
		if byDevice == nil {
			return nil, mxerr.BadJSON("messages.%s must be an object", userID)
		}
		out := make(map[string]json.RawMessage, len(byDevice))
		for deviceID, content := range byDevice {
			c, err := toDeviceContent(content)
			if err != nil {
				return nil, err
			}
			out[deviceID] = c
		}
		if ids.ValidUserID(userID) {
			msgs[userID] = out
		}
	}
	res, err := s.db.SendToDevice(ctx, storage.ToDeviceSend{
		Sender: req.Sender, SenderDevice: req.SenderDevice, TxnID: toDeviceTxnKey(req.Type, req.TxnID),
		Type: req.Type, Messages: msgs, InboxLimit: maxInbox,
	})
	if err != nil {
		return nil, err
	}
	return res.Overflows, nil
}

// toDeviceContent checks that a message's content is a JSON object of at
// most maxToDeviceBytes and returns it compacted.
func toDeviceContent(raw json.RawMessage) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, mxerr.BadJSON("Message content is not JSON")
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, mxerr.BadJSON("Message content must be a JSON object")
	}
	if buf.Len() > maxToDeviceBytes {
		return nil, mxerr.TooLarge("A to-device message may be at most %d bytes", maxToDeviceBytes)
	}
	return buf.Bytes(), nil
}

// toDeviceTxnKey is the stored transaction ID: the event type (part of the
// request path, which scopes a transaction ID) and the client's ID as a
// JSON array. Absurdly long keys are hashed to stay within index limits.
func toDeviceTxnKey(typ, txnID string) string {
	raw, _ := json.Marshal([]string{typ, txnID}) // strings always marshal
	if len(raw) > 1024 {
		sum := sha256.Sum256(raw)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return string(raw)
}

// toDevice fills the response's to_device section (being built) and the
// to-device part of its next_batch.
//
// A message is sent until the client acknowledges it by syncing with the
// token of the response that carried it. Such a token has a to-device
// position (Token.ToDeviceAck): the messages up to it are deleted (an
// initial sync acknowledges nothing), and the next ones after it, up to
// upto, are sent, at most toDeviceBatch of them. The to-device position of
// next_batch is upto, or the last message sent when the batch was cut; a
// response without messages hands out a token without one. Sync does not
// park a request whose token has a to-device position: it has messages to
// acknowledge, and the rest of a cut batch lies at or below the token's
// stream position, where the notifier does not look.
func (s *Service) toDevice(ctx context.Context, req Request, since Token, upto int64, resp *Response) error {
	after := int64(0)
	if req.Since != nil {
		after = since.ToDevice()
		if err := s.db.DeleteToDevice(ctx, req.UserID, req.DeviceID, after); err != nil {
			return err
		}
	}
	msgs, err := s.db.ToDeviceMessages(ctx, req.UserID, req.DeviceID, after, upto, toDeviceBatch+1)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	sentUpto := upto
	if len(msgs) > toDeviceBatch {
		msgs = msgs[:toDeviceBatch]
		sentUpto = msgs[len(msgs)-1].StreamPos
	}
	next, err := ParseToken(resp.NextBatch)
	if err != nil {
		return fmt.Errorf("syncapi: next_batch %q: %w", resp.NextBatch, err)
	}
	resp.NextBatch = next.withToDevice(sentUpto).String()
	evs := make([]any, 0, len(msgs))
	for _, m := range msgs {
		evs = append(evs, toDeviceEvent{Sender: m.Sender, Type: m.Type, Content: m.Content})
	}
	resp.ToDevice = &EventList{Events: evs}
	return nil
}

// toDeviceEvent is a to-device message as /sync sends it.
type toDeviceEvent struct {
	Sender  string          `json:"sender"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}
