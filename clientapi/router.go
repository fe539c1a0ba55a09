package clientapi

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/account"
	"github.com/aula-chat/aula/admin"
	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/consent"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/keys"
	"github.com/aula-chat/aula/media"
	"github.com/aula-chat/aula/oauth"
	"github.com/aula-chat/aula/push"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/syncapi"
	"github.com/aula-chat/aula/typing"
)

// API serves the client-server API. Build it with New.
type API struct {
	cfg      *config.Config
	log      *slog.Logger
	proxies  []netip.Prefix // http.trusted_proxies
	router   *dispatcher
	auth     *auth.Service
	sso      *auth.SSO     // single sign-on (sso.go)
	oauth    *oauth.Server // the OAuth 2.0 API (oauth.go)
	account  *account.Service
	push     *push.Service
	sync     *syncapi.Service
	sliding  *syncapi.Sliding // simplified sliding sync (sliding.go)
	rooms    *roomserver.Server
	typing   *typing.Tracker
	keys     *keys.Service
	backup   *keys.Backup     // server-side key backups (roomkeys.go)
	consent  *consent.Service // server notices and the consent gate (consent.go, notices.go, consentpage.go)
	media    *media.Service   // media repository (media.go, admin_media.go)
	calls    *calls           // voice and video calls (voip.go, openid.go, delayed.go, rtc.go)
	userDir  UserDirectory    // user directory search (userdir.go)
	adminSvc *admin.Service   // admin views of accounts (admin.go)
	adminOps *admin.Ops       // groups, export, erasure (admin_groups.go, admin_users.go)
}

// Services are the services the HTTP layer calls.
type Services struct {
	Auth          *auth.Service
	SSO           *auth.SSO     // nil: no single sign-on
	OAuth         *oauth.Server // nil: no OAuth 2.0 API
	Account       *account.Service
	Push          *push.Service
	Sync          *syncapi.Service
	Rooms         *roomserver.Server
	Typing        *typing.Tracker
	Keys          *keys.Service
	Backup        *keys.Backup
	Consent       *consent.Service
	Media         *media.Service
	Calls         CallServices // OpenID tokens and delayed events (calls.go)
	UserDirectory UserDirectory
	Admin         *admin.Service
	AdminOps      *admin.Ops
}

// New builds the HTTP handler for the whole server.
func New(cfg *config.Config, log *slog.Logger, s Services) *API {
	a := &API{
		cfg: cfg, log: log,
		auth: s.Auth, sso: s.SSO, oauth: s.OAuth, account: s.Account, push: s.Push, sync: s.Sync,
		rooms: s.Rooms, typing: s.Typing, keys: s.Keys, backup: s.Backup,
		consent: s.Consent, media: s.Media, calls: newCalls(s.Calls), userDir: s.UserDirectory,
		adminSvc: s.Admin, adminOps: s.AdminOps,
	}
	if s.Sync != nil {
		a.sliding = syncapi.NewSliding(s.Sync)
	}
	for _, p := range cfg.HTTP.TrustedProxies {
		if prefix, err := config.ParseProxy(p); err == nil { // Validate reported bad ones
			a.proxies = append(a.proxies, prefix)
		}
	}
	a.router = newDispatcher(a.routes(), a.middlewares())
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.router.ServeHTTP(w, r)
}

// routes is the one route table of the server, read top to bottom.
func (a *API) routes() *mux.Router {
	root := mux.NewRouter().SkipClean(true).UseEncodedPath()
	root.NotFoundHandler = a.withAccessLog(withCORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, mxerr.Unrecognized(http.StatusNotFound, "Unrecognized request").Body())
	})))
	root.MethodNotAllowedHandler = a.withAccessLog(withCORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// HTTP requires a 405 to say which methods the resource has.
		if allow := allowedMethods(root, r); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeJSON(w, http.StatusMethodNotAllowed, mxerr.Unrecognized(http.StatusMethodNotAllowed, "Unrecognized request method").Body())
	})))
	root.Use(a.middlewares()...)

	root.Handle("/.well-known/matrix/client", a.public(a.getWellKnown)).Methods("GET")

	// No subrouters: gorilla/mux answers a wrong method on a subrouter's
	// path with 404 instead of 405.
	root.Handle("/_matrix/client/versions", a.public(a.getVersions)).Methods("GET")

	// Most endpoints exist under v3 and, for older clients, r0.
	v3 := prefixed{root, "/_matrix/client/{version:(?:v3|r0)}"}
	v1 := prefixed{root, "/_matrix/client/v1"}

	// Login and logout (login.go).
	v3.Handle("/login", a.public(a.getLoginFlows)).Methods("GET")
	v3.Handle("/login", a.public(a.login)).Methods("POST")
	v3.Handle("/refresh", a.public(a.refresh)).Methods("POST")
	v1.Handle("/refresh", a.public(a.refresh)).Methods("POST")
	v3.Handle("/logout", a.authed(a.logout)).Methods("POST")
	v3.Handle("/logout/all", a.authed(a.logoutAll)).Methods("POST")
	v3.Handle("/account/whoami", a.authed(a.whoami)).Methods("GET")

	// Registration (register.go).
	v3.Handle("/register", a.public(a.register)).Methods("POST")
	v3.Handle("/register/available", a.public(a.registerAvailable)).Methods("GET")
	v1.Handle("/register/m.login.registration_token/validity", a.public(a.registrationTokenValidity)).Methods("GET")
	root.Handle("/_synapse/admin/v1/register", a.public(a.sharedSecretNonce)).Methods("GET")
	root.Handle("/_synapse/admin/v1/register", a.public(a.sharedSecretRegister)).Methods("POST")

	// Server capabilities (versions.go).
	v3.Handle("/capabilities", a.authed(a.getCapabilities)).Methods("GET")
	v3.Handle("/thirdparty/protocols", a.authed(a.getThirdPartyProtocols)).Methods("GET")
	// The room directory is always empty: closed rooms only (directory.go).
	v3.Handle("/publicRooms", a.public(a.getPublicRooms)).Methods("GET")
	v3.Handle("/publicRooms", a.authed(a.searchPublicRooms)).Methods("POST")
	v3.Handle("/directory/list/room/{roomId}", a.public(a.getRoomVisibility)).Methods("GET")
	v3.Handle("/directory/list/room/{roomId}", a.authed(a.setRoomVisibility)).Methods("PUT")
	// User directory search (userdir.go).
	v3.Handle("/user_directory/search", a.authed(a.searchUserDirectory)).Methods("POST")

	// Devices (devices.go).
	v3.Handle("/devices", a.authed(a.getDevices)).Methods("GET")
	v3.Handle("/devices/{deviceId}", a.authed(a.getDevice)).Methods("GET")
	v3.Handle("/devices/{deviceId}", a.authed(a.updateDevice)).Methods("PUT")
	v3.Handle("/devices/{deviceId}", a.authed(a.deleteDevice)).Methods("DELETE")
	v3.Handle("/delete_devices", a.authed(a.deleteDevices)).Methods("POST")

	// Account (account.go).
	v3.Handle("/account/password", a.authed(a.changePassword)).Methods("POST")
	v3.Handle("/account/deactivate", a.authed(a.deactivate)).Methods("POST")
	v3.Handle("/account/3pid", a.authed(a.getThreePIDs)).Methods("GET")

	// Profile (profile.go).
	v3.Handle("/profile/{userId}", a.authed(a.getProfile)).Methods("GET")
	v3.Handle("/profile/{userId}/displayname", a.authed(a.getDisplayName)).Methods("GET")
	v3.Handle("/profile/{userId}/displayname", a.gated(a.setDisplayName)).Methods("PUT")
	v3.Handle("/profile/{userId}/avatar_url", a.authed(a.getAvatarURL)).Methods("GET")
	v3.Handle("/profile/{userId}/avatar_url", a.gated(a.setAvatarURL)).Methods("PUT")

	// Account data and filters (accountdata.go).
	v3.Handle("/user/{userId}/account_data/{type}", a.authed(a.getAccountData)).Methods("GET")
	v3.Handle("/user/{userId}/account_data/{type}", a.authed(a.setAccountData)).Methods("PUT")
	v3.Handle("/user/{userId}/rooms/{roomId}/account_data/{type}", a.authed(a.getAccountData)).Methods("GET")
	v3.Handle("/user/{userId}/rooms/{roomId}/account_data/{type}", a.authed(a.setAccountData)).Methods("PUT")
	v3.Handle("/user/{userId}/filter", a.authed(a.createFilter)).Methods("POST")
	v3.Handle("/user/{userId}/filter/{filterId}", a.authed(a.getFilter)).Methods("GET")

	// Sync, presence and to-device messages (sync.go, presence.go, todevice.go).
	v3.Handle("/sync", a.authed(a.getSync)).Methods("GET")
	// Simplified sliding sync, MSC4186, for Element X (sliding.go).
	root.Handle("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", a.authed(a.slidingSync)).Methods("POST")
	v3.Handle("/presence/{userId}/status", a.authed(a.getPresence)).Methods("GET")
	v3.Handle("/presence/{userId}/status", a.authed(a.putPresence)).Methods("PUT")
	v3.Handle("/sendToDevice/{eventType}/{txnId}", a.authed(a.sendToDevice)).Methods("PUT")

	// End-to-end encryption keys (keys.go).
	v3.Handle("/keys/upload", a.authed(a.uploadKeys)).Methods("POST")
	v3.Handle("/keys/query", a.authed(a.queryKeys)).Methods("POST")
	v3.Handle("/keys/claim", a.authed(a.claimKeys)).Methods("POST")
	v3.Handle("/keys/changes", a.authed(a.keyChanges)).Methods("GET")
	v3.Handle("/keys/device_signing/upload", a.authed(a.uploadCrossSigningKeys)).Methods("POST")
	v3.Handle("/keys/signatures/upload", a.authed(a.uploadSignatures)).Methods("POST")

	// Key backup (roomkeys.go).
	v3.Handle("/room_keys/version", a.authed(a.getRoomKeysVersion)).Methods("GET")
	v3.Handle("/room_keys/version", a.authed(a.createRoomKeysVersion)).Methods("POST")
	v3.Handle("/room_keys/version/{backupVersion}", a.authed(a.getRoomKeysVersion)).Methods("GET")
	v3.Handle("/room_keys/version/{backupVersion}", a.authed(a.updateRoomKeysVersion)).Methods("PUT")
	v3.Handle("/room_keys/version/{backupVersion}", a.authed(a.deleteRoomKeysVersion)).Methods("DELETE")
	v3.Handle("/room_keys/keys", a.authed(a.getRoomKeys)).Methods("GET")
	v3.Handle("/room_keys/keys", a.authed(a.putRoomKeys)).Methods("PUT")
	v3.Handle("/room_keys/keys", a.authed(a.deleteRoomKeys)).Methods("DELETE")
	v3.Handle("/room_keys/keys/{roomId}", a.authed(a.getRoomKeys)).Methods("GET")
	v3.Handle("/room_keys/keys/{roomId}", a.authed(a.putRoomKeys)).Methods("PUT")
	v3.Handle("/room_keys/keys/{roomId}", a.authed(a.deleteRoomKeys)).Methods("DELETE")
	v3.Handle("/room_keys/keys/{roomId}/{sessionId}", a.authed(a.getRoomKeys)).Methods("GET")
	v3.Handle("/room_keys/keys/{roomId}/{sessionId}", a.authed(a.putRoomKeys)).Methods("PUT")
	v3.Handle("/room_keys/keys/{roomId}/{sessionId}", a.authed(a.deleteRoomKeys)).Methods("DELETE")

	// Push rules (pushrules.go).
	v3.Handle("/pushrules/", a.authed(a.getPushRules)).Methods("GET")
	v3.Handle("/pushrules/global/", a.authed(a.getGlobalPushRules)).Methods("GET")
	v3.Handle("/pushrules/global/{kind}/", a.authed(a.getPushRulesOfKind)).Methods("GET")
	v3.Handle("/pushrules/global/{kind}/{ruleId}", a.authed(a.getPushRule)).Methods("GET")
	v3.Handle("/pushrules/global/{kind}/{ruleId}", a.authed(a.putPushRule)).Methods("PUT")
	v3.Handle("/pushrules/global/{kind}/{ruleId}", a.authed(a.deletePushRule)).Methods("DELETE")
	v3.Handle("/pushrules/global/{kind}/{ruleId}/enabled", a.authed(a.getPushRuleEnabled)).Methods("GET")
	v3.Handle("/pushrules/global/{kind}/{ruleId}/enabled", a.authed(a.setPushRuleEnabled)).Methods("PUT")
	v3.Handle("/pushrules/global/{kind}/{ruleId}/actions", a.authed(a.getPushRuleActions)).Methods("GET")
	v3.Handle("/pushrules/global/{kind}/{ruleId}/actions", a.authed(a.setPushRuleActions)).Methods("PUT")
	// Pushers and the notification list (pushers.go, notifications.go).
	v3.Handle("/pushers", a.authed(a.getPushers)).Methods("GET")
	v3.Handle("/pushers/set", a.authed(a.setPusher)).Methods("POST")
	v3.Handle("/notifications", a.authed(a.getNotifications)).Methods("GET")

	// Rooms (rooms.go).
	v3.Handle("/createRoom", a.gated(a.createRoom)).Methods("POST")
	v3.Handle("/joined_rooms", a.authed(a.getJoinedRooms)).Methods("GET")
	v3.Handle("/join/{roomIdOrAlias}", a.gated(a.joinRoom)).Methods("POST")
	v3.Handle("/knock/{roomIdOrAlias}", a.gated(a.knockRoom)).Methods("POST")
	v3.Handle("/rooms/{roomId}/join", a.gated(a.joinRoom)).Methods("POST")
	v3.Handle("/rooms/{roomId}/leave", a.authed(a.keepNoticeInvite(a.leaveRoom))).Methods("POST")
	v3.Handle("/rooms/{roomId}/forget", a.authed(a.forgetRoom)).Methods("POST")
	v3.Handle("/rooms/{roomId}/invite", a.gated(a.inviteUser)).Methods("POST")
	v3.Handle("/rooms/{roomId}/kick", a.gated(a.kickUser)).Methods("POST")
	v3.Handle("/rooms/{roomId}/ban", a.gated(a.banUser)).Methods("POST")
	v3.Handle("/rooms/{roomId}/unban", a.gated(a.unbanUser)).Methods("POST")
	v3.Handle("/rooms/{roomId}/send/{eventType}/{txnId}", a.gated(a.sendMessage)).Methods("PUT")
	v3.Handle("/rooms/{roomId}/redact/{eventId}/{txnId}", a.gated(a.redactEvent)).Methods("PUT")
	v3.Handle("/rooms/{roomId}/state", a.authed(a.getState)).Methods("GET")
	v3.Handle("/rooms/{roomId}/state/{eventType}", a.authed(a.getStateEvent)).Methods("GET")
	v3.Handle("/rooms/{roomId}/state/{eventType}", a.gated(a.setState)).Methods("PUT")
	v3.Handle("/rooms/{roomId}/state/{eventType}/{stateKey:[^/]*}", a.authed(a.getStateEvent)).Methods("GET")
	v3.Handle("/rooms/{roomId}/state/{eventType}/{stateKey:[^/]*}", a.gated(a.setState)).Methods("PUT")
	v3.Handle("/rooms/{roomId}/event/{eventId}", a.authed(a.getEvent)).Methods("GET")
	v3.Handle("/rooms/{roomId}/members", a.authed(a.getMembers)).Methods("GET")
	v3.Handle("/rooms/{roomId}/joined_members", a.authed(a.getJoinedMembers)).Methods("GET")
	v3.Handle("/rooms/{roomId}/messages", a.authed(a.getMessages)).Methods("GET")

	// Receipts, read markers and typing (receipts.go).
	v3.Handle("/rooms/{roomId}/receipt/{receiptType}/{eventId}", a.authed(a.postReceipt)).Methods("POST")
	v3.Handle("/rooms/{roomId}/read_markers", a.authed(a.setReadMarkers)).Methods("POST")
	v3.Handle("/rooms/{roomId}/typing/{userId}", a.authed(a.setTyping)).Methods("PUT")

	// Room tags (tags.go).
	v3.Handle("/user/{userId}/rooms/{roomId}/tags", a.authed(a.getTags)).Methods("GET")
	v3.Handle("/user/{userId}/rooms/{roomId}/tags/{tag}", a.authed(a.putTag)).Methods("PUT")
	v3.Handle("/user/{userId}/rooms/{roomId}/tags/{tag}", a.authed(a.deleteTag)).Methods("DELETE")

	// Context and time jumps (context.go).
	v3.Handle("/rooms/{roomId}/context/{eventId}", a.authed(a.getContext)).Methods("GET")
	v1.Handle("/rooms/{roomId}/timestamp_to_event", a.authed(a.timestampToEvent)).Methods("GET")

	// Reports (reports.go).
	v3.Handle("/rooms/{roomId}/report/{eventId}", a.authed(a.reportEvent)).Methods("POST")
	v3.Handle("/rooms/{roomId}/report", a.authed(a.reportRoom)).Methods("POST")

	// Room aliases (aliases.go).
	v3.Handle("/directory/room/{roomAlias}", a.authed(a.getRoomAlias)).Methods("GET")
	v3.Handle("/directory/room/{roomAlias}", a.gated(a.putRoomAlias)).Methods("PUT")
	v3.Handle("/directory/room/{roomAlias}", a.authed(a.deleteRoomAlias)).Methods("DELETE")
	v3.Handle("/rooms/{roomId}/aliases", a.authed(a.getRoomAliases)).Methods("GET")

	// Room upgrades (upgrade.go).
	v3.Handle("/rooms/{roomId}/upgrade", a.gated(a.upgradeRoom)).Methods("POST")

	// Relations (relations.go).
	v1.Handle("/rooms/{roomId}/relations/{eventId}", a.authed(a.getRelations)).Methods("GET")
	v1.Handle("/rooms/{roomId}/relations/{eventId}/{relType}", a.authed(a.getRelations)).Methods("GET")
	v1.Handle("/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", a.authed(a.getRelations)).Methods("GET")
	v1.Handle("/rooms/{roomId}/threads", a.authed(a.getThreads)).Methods("GET")

	// Spaces and room summaries (hierarchy.go).
	v1.Handle("/rooms/{roomId}/hierarchy", a.authed(a.getSpaceHierarchy)).Methods("GET")
	v1.Handle("/room_summary/{roomIdOrAlias}", a.authed(a.getRoomSummary)).Methods("GET")
	root.Handle("/_matrix/client/unstable/im.nheko.summary/summary/{roomIdOrAlias}", a.authed(a.getRoomSummary)).Methods("GET")
	root.Handle("/_matrix/client/unstable/im.nheko.summary/rooms/{roomIdOrAlias}/summary", a.authed(a.getRoomSummary)).Methods("GET")

	// Voice and video calls (voip.go, openid.go, rtc.go, delayed.go). The
	// OpenID userinfo endpoint is the one federation path aula serves: the
	// LiveKit JWT service of Element Call checks users through it.
	v3.Handle("/voip/turnServer", a.authed(a.turnServer)).Methods("GET")
	v3.Handle("/user/{userId}/openid/request_token", a.authed(a.requestOpenIDToken)).Methods("POST")
	root.Handle("/_matrix/federation/v1/openid/userinfo", a.public(a.openIDUserInfo)).Methods("GET")
	root.Handle("/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", a.authed(a.getRTCTransports)).Methods("GET")
	msc4140 := prefixed{root, "/_matrix/client/unstable/org.matrix.msc4140"}
	msc4140.Handle("/delayed_events", a.authed(a.getDelayedEvents)).Methods("GET")
	msc4140.Handle("/delayed_events/{delayId}", a.public(a.updateDelayedEvent)).Methods("POST")
	msc4140.Handle("/delayed_events/{delayId}/{action:(?:cancel|restart|send)}", a.public(a.updateDelayedEvent)).Methods("POST")

	// Search (search.go).
	v3.Handle("/search", a.authed(a.search)).Methods("POST")

	// Media repository (media.go, admin_media.go). Uploads pass the consent
	// gate and are limited by media.max_upload_size, not the JSON body
	// limit (isMediaUpload). The legacy /_matrix/media/v3 downloads need no
	// token and refuse media frozen by media.freeze_unauthenticated.
	mediaV := prefixed{root, "/_matrix/media/{mediaVersion:(?:v3|r0)}"}
	mediaV.Handle("/upload", a.gated(a.upload)).Methods("POST")
	mediaV.Handle("/upload/{serverName}/{mediaId}", a.gated(a.uploadTo)).Methods("PUT")
	root.Handle("/_matrix/media/v1/create", a.gated(a.createMedia)).Methods("POST")
	v1.Handle("/media/config", a.authed(a.mediaConfig)).Methods("GET")
	v1.Handle("/media/preview_url", a.authed(a.previewURL)).Methods("GET")
	v1.Handle("/media/download/{serverName}/{mediaId}", a.mediaFile(true, a.download(false))).Methods("GET")
	v1.Handle("/media/download/{serverName}/{mediaId}/{fileName}", a.mediaFile(true, a.download(false))).Methods("GET")
	v1.Handle("/media/thumbnail/{serverName}/{mediaId}", a.mediaFile(true, a.thumbnail(false))).Methods("GET")
	mediaV.Handle("/config", a.authed(a.mediaConfig)).Methods("GET")
	mediaV.Handle("/preview_url", a.authed(a.previewURL)).Methods("GET")
	mediaV.Handle("/download/{serverName}/{mediaId}", a.mediaFile(false, a.download(true))).Methods("GET")
	mediaV.Handle("/download/{serverName}/{mediaId}/{fileName}", a.mediaFile(false, a.download(true))).Methods("GET")
	mediaV.Handle("/thumbnail/{serverName}/{mediaId}", a.mediaFile(false, a.thumbnail(true))).Methods("GET")
	root.Handle("/_synapse/admin/v1/users/{userId}/media", a.admin(a.adminUserMedia)).Methods("GET")
	root.Handle("/_synapse/admin/v1/users/{userId}/media", a.admin(a.adminDeleteUserMedia)).Methods("DELETE")
	root.Handle("/_synapse/admin/v1/media/{serverName}/{mediaId}", a.admin(a.adminDeleteMedia)).Methods("DELETE")
	root.Handle("/_synapse/admin/v1/media/{serverName}/{mediaId}", a.admin(a.adminMediaInfo)).Methods("GET")
	root.Handle("/_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}", a.admin(a.adminQuarantineMedia)).Methods("POST")
	root.Handle("/_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}", a.admin(a.adminUnquarantineMedia)).Methods("POST")
	root.Handle("/_synapse/admin/v1/media/delete", a.admin(a.adminPurgeMedia)).Methods("POST")
	root.Handle("/_synapse/admin/v1/media/{serverName}/delete", a.admin(a.adminPurgeMedia)).Methods("POST")

	// Single sign-on (sso.go): HTML pages and redirects for the
	// browser. Synapse's callback paths are answered too, so a university
	// moving from Synapse keeps its registered redirect URI.
	v3.Handle("/login/sso/redirect", a.ssoRedirect()).Methods("GET")
	v3.Handle("/login/sso/redirect/{idpId:[A-Za-z0-9_.~-]+}", a.ssoRedirect()).Methods("GET")
	v3.Handle("/auth/m.login.sso/fallback/web", a.ssoFallback()).Methods("GET")
	v3.Handle("/auth/m.oauth/fallback/web", a.ssoFallback()).Methods("GET")
	root.Handle("/_aula/client/sso/reauth", a.ssoReauth()).Methods("GET")
	root.Handle(ssoCallbackPath, a.ssoCallback()).Methods("GET", "POST")
	root.Handle("/_synapse/client/oidc/callback", a.ssoCallback()).Methods("GET", "POST")
	root.Handle("/_aula/client/oidc/backchannel_logout", a.ssoBackchannelLogout()).Methods("POST")
	root.Handle("/_synapse/client/oidc/backchannel_logout", a.ssoBackchannelLogout()).Methods("POST")

	// The OAuth 2.0 API (oauth.go, docs/oauth.md): server metadata, and the
	// authorization server, whose browser part goes through single sign-on.
	v1.Handle("/auth_metadata", a.public(a.getAuthMetadata)).Methods("GET")
	root.Handle("/_matrix/client/unstable/org.matrix.msc2965/auth_metadata", a.public(a.getAuthMetadata)).Methods("GET")
	root.Handle(oauth.RegisterPath, a.oauthRegister()).Methods("POST")
	root.Handle(oauth.AuthorizePath, a.oauthAuthorize()).Methods("GET")
	root.Handle(oauth.ConsentPath, a.oauthConsent()).Methods("GET", "POST")
	root.Handle(oauth.AccountPath, a.oauthAccount()).Methods("GET", "POST")
	root.Handle(oauth.TokenPath, a.oauthToken()).Methods("POST")
	root.Handle(oauth.RevokePath, a.oauthRevoke()).Methods("POST")

	// Admin API, Synapse-compatible paths (admin.go): every route uses a.admin.
	root.Handle("/_synapse/admin/v2/users/{userId}", a.admin(a.adminGetUser)).Methods("GET")

	// Privacy, data rights and prepared groups (admin_users.go, admin_groups.go).
	root.Handle("/_synapse/admin/v1/deactivate/{userId}", a.admin(a.adminDeactivate)).Methods("POST")
	root.Handle("/_aula/admin/v1/users/{userId}/export", a.admin(a.adminExport)).Methods("GET")
	root.Handle("/_aula/admin/v1/groups", a.admin(a.adminCreateGroup)).Methods("POST")

	// Server notices and terms-of-service consent (notices.go, consentpage.go).
	root.Handle("/_synapse/admin/v1/send_server_notice", a.admin(a.sendServerNotice)).Methods("POST")
	root.Handle("/_synapse/admin/v1/send_server_notice/{txnId}", a.admin(a.sendServerNotice)).Methods("PUT")
	root.Handle("/_matrix/consent", a.consentPage()).Methods("GET", "POST")

	return root
}

// allowedMethods lists the methods the route table serves for r's path, for
// the Allow header of a 405; OPTIONS is answered for every path.
func allowedMethods(router *mux.Router, r *http.Request) string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		return ""
	}
	return strings.Join(append(allowed, http.MethodOptions), ", ")
}

// prefixed registers routes under a path prefix on the root router.
type prefixed struct {
	r      *mux.Router
	prefix string
}

func (p prefixed) Handle(path string, h http.Handler) *mux.Route {
	return p.r.Handle(p.prefix+path, h)
}
