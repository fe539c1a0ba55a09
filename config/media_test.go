package config

import (
	"strings"
	"testing"
	"time"
)

func TestMediaValidate(t *testing.T) {
	if p := defaultMedia().validate(); len(p) != 0 {
		t.Fatalf("defaults invalid: %v", p)
	}
	m := defaultMedia()
	m.MaxUploadSize = 10
	m.FreezeUnauthenticated = "sometimes"
	m.ThumbnailSizes = []string{"32x32 crop", "32 crop", "0x10 scale", "10x10 stretch"}
	m.MaxImagePixels = 10
	m.UserQuota = -1
	m.MaxPendingUploads = 0
	m.UnusedExpiry = Duration(time.Second)
	m.URLPreview.AllowIPs = []string{"10.0.0.0/8", "intranet"}
	p := strings.Join(m.validate(), "\n")
	for _, want := range []string{
		"media.max_upload_size", "media.freeze_unauthenticated", `"32 crop"`, `"0x10 scale"`, `"10x10 stretch"`,
		"media.max_image_pixels", "media.user_quota", "media.max_pending_uploads", "media.unused_expiry", `"intranet"`,
	} {
		if !strings.Contains(p, want) {
			t.Errorf("problems do not mention %s:\n%s", want, p)
		}
	}
	if strings.Contains(p, `"32x32 crop"`) || strings.Contains(p, "10.0.0.0/8") {
		t.Errorf("valid entries reported:\n%s", p)
	}
}

func TestMediaFreezeTime(t *testing.T) {
	for _, tt := range []struct {
		value string
		on    bool
		from  time.Time
	}{
		{"all", true, time.Time{}},
		{"none", false, time.Time{}},
		{"2024-09-01", true, time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-09-01T12:00:00+02:00", true, time.Date(2024, 9, 1, 10, 0, 0, 0, time.UTC)},
	} {
		from, on, err := Media{FreezeUnauthenticated: tt.value}.FreezeTime()
		if err != nil || on != tt.on || !from.Equal(tt.from) {
			t.Errorf("FreezeTime(%q) = %v, %v, %v", tt.value, from, on, err)
		}
	}
	if got := defaultMedia().Thumbnails(); len(got) != 5 || got[0] != (ThumbnailSize{32, 32, "crop"}) || got[4] != (ThumbnailSize{800, 600, "scale"}) {
		t.Errorf("default thumbnails = %v", got)
	}
}
