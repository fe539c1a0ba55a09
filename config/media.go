package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Media controls the media repository: uploads, downloads and thumbnails.
type Media struct {
	// MaxUploadSize is the largest accepted upload, in bytes.
	MaxUploadSize int64 `yaml:"max_upload_size"`
	// FreezeUnauthenticated says which media the legacy unauthenticated
	// /_matrix/media/v3/download and thumbnail endpoints refuse: "all"
	// (everything: media only behind login), "none", or a date
	// (2006-01-02 or RFC 3339) from which on uploads are refused there.
	FreezeUnauthenticated string `yaml:"freeze_unauthenticated"`
	// ThumbnailSizes are the thumbnails offered, "WIDTHxHEIGHT METHOD"
	// with METHOD crop or scale, e.g. "96x96 crop".
	ThumbnailSizes []string `yaml:"thumbnail_sizes"`
	// MaxImagePixels is the largest image (width × height) thumbnails are
	// made of; larger ones are refused before decoding.
	MaxImagePixels int64 `yaml:"max_image_pixels"`
	// UserQuota is the most bytes of media one user may store; 0 is no
	// limit.
	UserQuota int64 `yaml:"user_quota"`
	// MaxPendingUploads is how many created but not yet uploaded media IDs
	// (POST /_matrix/media/v1/create) a user may hold at once.
	MaxPendingUploads int `yaml:"max_pending_uploads"`
	// UnusedExpiry is how long a created media ID waits for its upload.
	UnusedExpiry Duration `yaml:"unused_expiry"`
	// URLPreview controls GET /_matrix/client/v1/media/preview_url.
	URLPreview URLPreview `yaml:"url_preview"`
}

// URLPreview controls link previews, for which the server fetches web
// pages on behalf of users.
type URLPreview struct {
	// Enabled turns link previews on. Off by default: the server then
	// fetches nothing from the web.
	Enabled bool `yaml:"enabled"`
	// AllowIPs are addresses or CIDR ranges previews may fetch from even
	// though they are private, loopback or otherwise internal; all such
	// addresses are refused otherwise.
	AllowIPs []string `yaml:"allow_ips"`
}

// ThumbnailSize is one entry of media.thumbnail_sizes.
type ThumbnailSize struct {
	Width, Height int
	Method        string // "crop" or "scale"
}

// defaultMedia are the media defaults: 50 MiB uploads, the thumbnail sizes
// the spec recommends, 32 megapixels.
func defaultMedia() Media {
	return Media{
		MaxUploadSize:         50 << 20,
		FreezeUnauthenticated: "all",
		ThumbnailSizes:        []string{"32x32 crop", "96x96 crop", "320x240 scale", "640x480 scale", "800x600 scale"},
		MaxImagePixels:        32_000_000,
		MaxPendingUploads:     5,
		UnusedExpiry:          Duration(24 * time.Hour),
		URLPreview:            URLPreview{AllowIPs: []string{}},
	}
}

// ParseThumbnailSize parses "WIDTHxHEIGHT METHOD".
func ParseThumbnailSize(s string) (ThumbnailSize, error) {
	dims, method, ok := strings.Cut(strings.TrimSpace(s), " ")
	method = strings.TrimSpace(method)
	w, h, ok2 := strings.Cut(dims, "x")
	if !ok || !ok2 || (method != "crop" && method != "scale") {
		return ThumbnailSize{}, fmt.Errorf("%q is not WIDTHxHEIGHT crop|scale", s)
	}
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(h)
	if err1 != nil || err2 != nil || wi < 1 || hi < 1 || wi > 4096 || hi > 4096 {
		return ThumbnailSize{}, fmt.Errorf("%q: width and height must be 1-4096", s)
	}
	return ThumbnailSize{Width: wi, Height: hi, Method: method}, nil
}

// Thumbnails returns the parsed media.thumbnail_sizes; Validate has
// checked them, bad entries are skipped.
func (m Media) Thumbnails() []ThumbnailSize {
	var out []ThumbnailSize
	for _, s := range m.ThumbnailSizes {
		if t, err := ParseThumbnailSize(s); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// FreezeTime returns the time from which on media is refused by the legacy
// unauthenticated endpoints: the zero time for "all", ok false for "none".
func (m Media) FreezeTime() (t time.Time, ok bool, err error) {
	switch m.FreezeUnauthenticated {
	case "all", "":
		return time.Time{}, true, nil
	case "none":
		return time.Time{}, false, nil
	}
	if t, err := time.Parse("2006-01-02", m.FreezeUnauthenticated); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339, m.FreezeUnauthenticated); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not all, none or a date (2006-01-02 or RFC 3339)", m.FreezeUnauthenticated)
}

// validate reports problems of the media section.
func (m Media) validate() []string {
	var p []string
	if m.MaxUploadSize < 1024 {
		p = append(p, fmt.Sprintf("media.max_upload_size: %d is below 1024 bytes", m.MaxUploadSize))
	}
	if _, _, err := m.FreezeTime(); err != nil {
		p = append(p, "media.freeze_unauthenticated: "+err.Error())
	}
	for _, s := range m.ThumbnailSizes {
		if _, err := ParseThumbnailSize(s); err != nil {
			p = append(p, "media.thumbnail_sizes: "+err.Error())
		}
	}
	if m.MaxImagePixels < 1_000_000 {
		p = append(p, fmt.Sprintf("media.max_image_pixels: %d is below 1000000", m.MaxImagePixels))
	}
	if m.UserQuota < 0 {
		p = append(p, "media.user_quota: must not be negative (0 is no limit)")
	}
	if m.MaxPendingUploads < 1 {
		p = append(p, "media.max_pending_uploads: must be at least 1")
	}
	if m.UnusedExpiry.D() < time.Minute {
		p = append(p, "media.unused_expiry: must be at least 1m")
	}
	for _, a := range m.URLPreview.AllowIPs {
		if _, err := ParseProxy(a); err != nil {
			p = append(p, fmt.Sprintf("media.url_preview.allow_ips: %q is not an IP address or CIDR range", a))
		}
	}
	return p
}
