// Package push owns Matrix push rules as data: their JSON shape, the
// server-default ruleset of spec v1.16, the per-user changes a user has made
// to it, and the validation behind the /pushrules client API.
//
// # Model
//
// A user's push rules are never stored as a full ruleset. The storage layer
// keeps one small [UserRules] document per user, holding only what that user
// changed:
//
//   - the user's own rules, per kind, in priority order (most important
//     first), and
//   - for server-default rules (rule IDs starting with "."), overrides of
//     their "enabled" flag and "actions".
//
// [Effective] merges that document with [Defaults] into the [Ruleset] a client
// sees (GET /pushrules/ returns {"global": Effective(...)}). Because defaults
// are computed rather than copied into every account, changing the server's
// default set (for instance moving to a newer spec version) takes effect for
// everyone at once; overrides of defaults that no longer exist are ignored.
//
// # Priority
//
// The five kinds are evaluated in the order of [Kinds]. Within a kind rules
// are evaluated in list order. Server-default rules rank below the user's own
// rules of the same kind, except ".m.rule.master", which always comes first.
//
// # Errors
//
// Every mutation validates its input and reports client mistakes as
// *mxerr.Error values carrying the HTTP status and Matrix errcode to send.
//
// Evaluating rules against events is not part of this package yet.
package push
