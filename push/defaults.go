package push

import (
	"encoding/json"
	"strings"
)

// Rule IDs of the server-default rules defined by spec v1.16, in the order in
// which the spec lists them within each kind.
const (
	// RuleMaster (override) matches everything; enabling it silences all
	// notifications. It is disabled by default and always ranks first.
	RuleMaster = ".m.rule.master"
	// RuleSuppressNotices (override) silences m.notice messages.
	RuleSuppressNotices = ".m.rule.suppress_notices"
	// RuleInviteForMe (override) notifies about invites for the user.
	RuleInviteForMe = ".m.rule.invite_for_me"
	// RuleMemberEvent (override) silences other membership events.
	RuleMemberEvent = ".m.rule.member_event"
	// RuleIsUserMention (override) highlights events whose m.mentions
	// lists the user.
	RuleIsUserMention = ".m.rule.is_user_mention"
	// RuleContainsDisplayName (override) highlights messages whose body
	// contains the user's display name. Deprecated since v1.7, still
	// defined in v1.16 (removed in v1.17).
	RuleContainsDisplayName = ".m.rule.contains_display_name"
	// RuleIsRoomMention (override) highlights @room mentions made through
	// m.mentions by a sender allowed to notify the room.
	RuleIsRoomMention = ".m.rule.is_room_mention"
	// RuleRoomNotif (override) highlights "@room" in the body from a sender
	// allowed to notify the room. Deprecated since v1.7, still defined in
	// v1.16 (removed in v1.17).
	RuleRoomNotif = ".m.rule.roomnotif"
	// RuleTombstone (override) highlights room upgrades.
	RuleTombstone = ".m.rule.tombstone"
	// RuleReaction (override) silences m.reaction events.
	RuleReaction = ".m.rule.reaction"
	// RuleServerACL (override) silences m.room.server_acl state events.
	// Note the ".room." in the ID: that is how the spec spells it.
	RuleServerACL = ".m.rule.room.server_acl"
	// RuleSuppressEdits (override) silences edits (m.replace relations).
	RuleSuppressEdits = ".m.rule.suppress_edits"

	// RuleContainsUserName (content) highlights messages containing the
	// user's localpart. Deprecated since v1.7, still defined in v1.16
	// (removed in v1.17).
	RuleContainsUserName = ".m.rule.contains_user_name"

	// RuleCall (underride) rings for incoming VoIP calls.
	RuleCall = ".m.rule.call"
	// RuleEncryptedRoomOneToOne (underride) notifies about encrypted events
	// in rooms with two members.
	RuleEncryptedRoomOneToOne = ".m.rule.encrypted_room_one_to_one"
	// RuleRoomOneToOne (underride) notifies about messages in rooms with
	// two members.
	RuleRoomOneToOne = ".m.rule.room_one_to_one"
	// RuleMessage (underride) notifies about every message.
	RuleMessage = ".m.rule.message"
	// RuleEncrypted (underride) notifies about every encrypted event.
	RuleEncrypted = ".m.rule.encrypted"
)

// Defaults returns the server-default ruleset of spec v1.16 for userID (a
// full MXID such as "@alice:example.org"). Conditions that name the user use
// the full MXID; the content rule .m.rule.contains_user_name uses the
// localpart as its pattern. Every call returns freshly allocated slices.
func Defaults(userID string) Ruleset {
	mxid, _ := json.Marshal(userID)
	local := localpart(userID)

	// Building blocks for the actions the defaults use.
	notify := func() json.RawMessage { return json.RawMessage(`"notify"`) }
	sound := func(v string) json.RawMessage {
		b, _ := json.Marshal(map[string]string{"set_tweak": "sound", "value": v})
		return b
	}
	highlight := func() json.RawMessage { return json.RawMessage(`{"set_tweak":"highlight"}`) }
	actions := func(a ...json.RawMessage) []json.RawMessage {
		return append([]json.RawMessage{}, a...)
	}
	conds := func(c ...Condition) []Condition { return append([]Condition{}, c...) }
	rule := func(id string, c []Condition, a []json.RawMessage) Rule {
		return Rule{RuleID: id, Default: true, Enabled: true, Conditions: c, Actions: a}
	}

	master := rule(RuleMaster, conds(), actions())
	master.Enabled = false

	return Ruleset{
		Override: []Rule{
			master,
			rule(RuleSuppressNotices,
				conds(eventMatch("content.msgtype", "m.notice")),
				actions()),
			rule(RuleInviteForMe,
				conds(
					eventMatch("type", "m.room.member"),
					eventMatch("content.membership", "invite"),
					eventMatch("state_key", userID),
				),
				actions(notify(), sound("default"))),
			rule(RuleMemberEvent,
				conds(eventMatch("type", "m.room.member")),
				actions()),
			rule(RuleIsUserMention,
				conds(Condition{Kind: "event_property_contains", Key: `content.m\.mentions.user_ids`, Value: mxid}),
				actions(notify(), sound("default"), highlight())),
			rule(RuleContainsDisplayName,
				conds(Condition{Kind: "contains_display_name"}),
				actions(notify(), sound("default"), highlight())),
			rule(RuleIsRoomMention,
				conds(
					Condition{Kind: "event_property_is", Key: `content.m\.mentions.room`, Value: json.RawMessage(`true`)},
					Condition{Kind: "sender_notification_permission", Key: "room"},
				),
				actions(notify(), highlight())),
			rule(RuleRoomNotif,
				conds(
					eventMatch("content.body", "@room"),
					Condition{Kind: "sender_notification_permission", Key: "room"},
				),
				actions(notify(), highlight())),
			rule(RuleTombstone,
				conds(
					eventMatch("type", "m.room.tombstone"),
					eventMatch("state_key", ""),
				),
				actions(notify(), highlight())),
			rule(RuleReaction,
				conds(eventMatch("type", "m.reaction")),
				actions()),
			rule(RuleServerACL,
				conds(
					eventMatch("type", "m.room.server_acl"),
					eventMatch("state_key", ""),
				),
				actions()),
			rule(RuleSuppressEdits,
				conds(Condition{Kind: "event_property_is", Key: `content.m\.relates_to.rel_type`, Value: json.RawMessage(`"m.replace"`)}),
				actions()),
		},
		Content: []Rule{{
			RuleID:  RuleContainsUserName,
			Default: true,
			Enabled: true,
			Pattern: &local,
			Actions: actions(notify(), sound("default"), highlight()),
		}},
		Room:   []Rule{},
		Sender: []Rule{},
		Underride: []Rule{
			rule(RuleCall,
				conds(eventMatch("type", "m.call.invite")),
				actions(notify(), sound("ring"))),
			rule(RuleEncryptedRoomOneToOne,
				conds(
					Condition{Kind: "room_member_count", Is: "2"},
					eventMatch("type", "m.room.encrypted"),
				),
				actions(notify(), sound("default"))),
			rule(RuleRoomOneToOne,
				conds(
					Condition{Kind: "room_member_count", Is: "2"},
					eventMatch("type", "m.room.message"),
				),
				actions(notify(), sound("default"))),
			rule(RuleMessage,
				conds(eventMatch("type", "m.room.message")),
				actions(notify())),
			rule(RuleEncrypted,
				conds(eventMatch("type", "m.room.encrypted")),
				actions(notify())),
		},
	}
}

// eventMatch returns an event_match condition.
func eventMatch(key, pattern string) Condition {
	return Condition{Kind: "event_match", Key: key, Pattern: &pattern}
}

// localpart returns the part of an MXID between the sigil and the first
// colon. Input that is not shaped like an MXID is returned without a leading
// "@".
func localpart(userID string) string {
	s := strings.TrimPrefix(userID, "@")
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// defaultIDs records, per kind, the IDs of the server-default rules. Rule IDs
// do not depend on the user, so any MXID will do.
var defaultIDs = func() map[string]map[string]bool {
	rs := Defaults("@user:localhost")
	ids := make(map[string]map[string]bool, len(Kinds))
	for _, kind := range Kinds {
		ids[kind] = map[string]bool{}
		for _, r := range *rs.list(kind) {
			ids[kind][r.RuleID] = true
		}
	}
	return ids
}()

// isDefaultID reports whether ruleID names a server-default rule of kind.
func isDefaultID(kind, ruleID string) bool {
	return defaultIDs[kind][ruleID]
}
