// Package syncapi is the read path of the client-server API. For now it owns
// sync filters: the Filter type that POST /user/{userId}/filter validates and
// stores, and the matching rules that apply it to events. It will also own
// /sync, which takes the same filters either by ID or as inline JSON.
package syncapi
