package clientapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/media"
)

// The media repository (spec: "Content repository"): uploads under
// /_matrix/media, authenticated downloads and thumbnails under
// /_matrix/client/v1/media, and the legacy unauthenticated
// /_matrix/media/v3 downloads, which media.freeze_unauthenticated closes.

// isMediaUpload reports whether r uploads media: such bodies are limited by
// media.max_upload_size while they stream, not by http.max_request_bytes.
func isMediaUpload(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/_matrix/media/")
	if !ok {
		return false
	}
	_, rest, _ = strings.Cut(rest, "/") // the version
	return rest == "upload" || strings.HasPrefix(rest, "upload/")
}

// upload answers POST /_matrix/media/v3/upload.
func (a *API) upload(r *http.Request, d *auth.Device) (any, error) {
	mxc, err := a.media.Upload(r.Context(), mediaUpload(r, d))
	if err != nil {
		return nil, err
	}
	return map[string]string{"content_uri": mxc}, nil
}

func mediaUpload(r *http.Request, d *auth.Device) media.Upload {
	return media.Upload{
		UserID:        d.UserID,
		ContentType:   r.Header.Get("Content-Type"),
		FileName:      r.URL.Query().Get("filename"),
		ContentLength: r.ContentLength,
		Body:          r.Body,
	}
}

// createMedia answers POST /_matrix/media/v1/create.
func (a *API) createMedia(r *http.Request, d *auth.Device) (any, error) {
	mxc, expires, err := a.media.Create(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"content_uri": mxc, "unused_expires_at": expires}, nil
}

// uploadTo answers PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
func (a *API) uploadTo(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return emptyObject, a.media.UploadTo(r.Context(), v["serverName"], v["mediaId"], mediaUpload(r, d))
}

// mediaConfig answers GET /_matrix/client/v1/media/config (and the legacy
// /_matrix/media/v3/config).
func (a *API) mediaConfig(_ *http.Request, _ *auth.Device) (any, error) {
	return map[string]int64{"m.upload.size": a.media.MaxUploadSize()}, nil
}

// previewURL answers GET /_matrix/client/v1/media/preview_url: 404
// M_UNRECOGNIZED unless media.url_preview.enabled.
func (a *API) previewURL(r *http.Request, _ *auth.Device) (any, error) {
	if !a.media.PreviewEnabled() {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "URL previews are disabled on this server")
	}
	target := r.URL.Query().Get("url")
	if target == "" {
		return nil, mxerr.MissingParam("url is required")
	}
	return a.media.PreviewURL(r.Context(), target)
}

// mediaFunc is a media endpoint that answers with a file.
type mediaFunc func(r *http.Request) (*media.File, string, error)

// mediaFile adapts a media endpoint: with an access token when authed
// (401 otherwise), the file's bytes with the safe headers on success, a
// JSON error otherwise.
func (a *API) mediaFile(authed bool, h mediaFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := decodeVars(r)
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		if authed {
			d, err := a.auth.Authenticate(r.Context(), accessToken(r), a.clientIP(r))
			if err != nil {
				a.writeResult(w, r, nil, err)
				return
			}
			setRequester(r, d)
		}
		f, disposition, err := h(r)
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		defer f.Close()
		serveMediaFile(w, r, f, disposition)
	})
}

// mediaCSP keeps uploaded HTML or SVG opened in a browser from running
// script or loading anything (the CSP Synapse sends for media).
const mediaCSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; " +
	"style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

// serveMediaFile writes f with headers that make it safe to open in a
// browser; disposition is the Content-Disposition.
func serveMediaFile(w http.ResponseWriter, r *http.Request, f *media.File, disposition string) {
	h := w.Header()
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Security-Policy", mediaCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	// Behind login, and quarantine or deletion must take effect: private.
	h.Set("Cache-Control", "private, max-age=86400")
	h.Set("ETag", `"`+f.ETag+`"`)
	http.ServeContent(w, r, "", f.Modified, f.File)
}

// inlineTypes are the content types the spec allows to be served inline
// ("Serving inline content"); everything else is an attachment.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true,
	"application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true, "image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true,
	"audio/wave": true, "audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// dispositionFor is the Content-Disposition of a download of content type
// ct named name (no file name when empty).
func dispositionFor(ct, name string, thumbnail bool) string {
	typ, _, _ := strings.Cut(ct, ";")
	kind := "attachment"
	if thumbnail || inlineTypes[strings.ToLower(strings.TrimSpace(typ))] {
		kind = "inline"
	}
	return kind + fileNameParam(name)
}

// fileNameParam encodes a file name for Content-Disposition (RFC 6266):
// a quoted filename when it is printable ASCII, else an RFC 5987
// filename* in UTF-8.
func fileNameParam(name string) string {
	if name == "" {
		return ""
	}
	ascii := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return `; filename="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	var b strings.Builder
	b.WriteString("; filename*=utf-8''")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
		}
	}
	return b.String()
}

// waitParam reads timeout_ms: how long to wait for a pending upload
// (default 20 s, at most 60 s).
func waitParam(r *http.Request) (time.Duration, error) {
	ms, err := intParam(r.URL.Query(), "timeout_ms", 20000, 0, 60000)
	return time.Duration(ms) * time.Millisecond, err
}

// download serves GET …/download/{serverName}/{mediaId}[/{fileName}];
// legacy is the unauthenticated /_matrix/media/v3 endpoint.
func (a *API) download(legacy bool) mediaFunc {
	return func(r *http.Request) (*media.File, string, error) {
		wait, err := waitParam(r)
		if err != nil {
			return nil, "", err
		}
		v := mux.Vars(r)
		f, err := a.media.Download(r.Context(), v["serverName"], v["mediaId"], wait, legacy)
		if err != nil {
			return nil, "", err
		}
		name := f.Name
		if n, ok := v["fileName"]; ok && utf8.ValidString(n) {
			name = n
		}
		return f, dispositionFor(f.ContentType, name, false), nil
	}
}

// thumbnail serves GET …/thumbnail/{serverName}/{mediaId}.
func (a *API) thumbnail(legacy bool) mediaFunc {
	return func(r *http.Request) (*media.File, string, error) {
		q := r.URL.Query()
		if q.Get("width") == "" || q.Get("height") == "" {
			return nil, "", mxerr.MissingParam("width and height are required")
		}
		width, err := intParam(q, "width", 0, 1, 1<<20)
		if err != nil {
			return nil, "", err
		}
		height, err := intParam(q, "height", 0, 1, 1<<20)
		if err != nil {
			return nil, "", err
		}
		if _, err := boolParam(q, "animated"); err != nil { // accepted; thumbnails are still images
			return nil, "", err
		}
		wait, err := waitParam(r)
		if err != nil {
			return nil, "", err
		}
		v := mux.Vars(r)
		f, err := a.media.Thumbnail(r.Context(), media.ThumbnailRequest{
			ServerName: v["serverName"], MediaID: v["mediaId"], Width: width, Height: height,
			Method: q.Get("method"), Wait: wait, Legacy: legacy,
		})
		if err != nil {
			return nil, "", err
		}
		return f, dispositionFor(f.ContentType, f.Name, true), nil
	}
}
