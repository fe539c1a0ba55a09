package storage

// ChangeKind says what a Change is about.
type ChangeKind uint8

// The kinds of change the stream reports.
const (
	// ChangeEvent: an event was stored in RoomID. For m.room.member events
	// UserID is the target (the state key) and Membership its new value.
	ChangeEvent ChangeKind = iota + 1
	// ChangeReceipt: UserID's receipt in RoomID moved.
	ChangeReceipt
	// ChangeAccountData: UserID's account data of Type changed (global
	// when RoomID is empty; push rules are Type "m.push_rules").
	ChangeAccountData
	// ChangeForget: UserID forgot RoomID. It has no stream position.
	ChangeForget
	// ChangeToDevice: a to-device message for UserID's DeviceID arrived.
	ChangeToDevice
	// ChangePresence: UserID's presence changed.
	ChangePresence
	// ChangeDeviceList: UserID's devices or cross-signing keys changed.
	ChangeDeviceList
	// ChangeKeyCounts: the one-time or fallback keys of UserID's DeviceID
	// changed (uploaded or claimed). It has no stream position.
	ChangeKeyCounts
)

// Change is one committed write that /sync may have to report. Every
// write that takes a stream position records one, and OnChange's listener
// receives them in stream order once every position up to theirs has
// finished, so a woken reader that reads up to the stream position finds
// the change's rows. This is the single place where /sync learns about
// writes; a second server process would receive the same records (for
// example over PostgreSQL's LISTEN/NOTIFY).
type Change struct {
	Pos        int64 // 0 for changes outside the stream (ChangeForget)
	Kind       ChangeKind
	RoomID     string
	UserID     string
	DeviceID   string
	Type       string    // account data type
	Membership string    // ChangeEvent of an m.room.member event
	Event      *Event    // ChangeEvent: the stored event
	Txn        Txn       // ChangeEvent: the client transaction that sent it, if any
	Receipt    *Receipt  // ChangeReceipt: the stored receipt
	Presence   *Presence // ChangePresence: the stored presence
}

// OnChange sets the function that receives committed changes, with the
// stream position they are published at. It is called in stream order,
// never concurrently, and must return quickly without calling back into
// the database (it runs while the stream waits). Set it before serving.
func (db *DB) OnChange(f func(pos int64, changes []Change)) {
	db.stream.mu.Lock()
	defer db.stream.mu.Unlock()
	db.stream.listener = f
}
