// Package syncapi is the read path of the client-server API: GET /sync and
// the filters it takes (stored with POST /user/{userId}/filter or given
// inline). The Notifier learns about every committed write from storage's
// change feed and wakes exactly the long-polling requests a change
// concerns; the Service then computes the response, asking the room server
// for each room's timeline and state. See docs/sync.md.
package syncapi
