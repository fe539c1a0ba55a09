// Package roomserver is the only code that creates room events. It builds
// and signs them with gomatrixserverlib, checks them against the auth rules
// of the room version, and stores them through one write path: a room's
// events form a single chain (aula does not federate), appended under the
// room's lock, while different rooms proceed in parallel.
package roomserver
