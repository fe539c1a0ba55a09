package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// newTestService returns a media service on a fresh SQLite database.
func newTestService(t testing.TB, change func(c *config.Config)) *Service {
	t.Helper()
	c := config.Default()
	c.ServerName = "aula.test"
	c.DataDir = t.TempDir()
	if change != nil {
		change(c)
	}
	db := storagetest.OpenDB(t, "sqlite:"+filepath.Join(c.DataDir, "aula.db"))
	s, err := New(db, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testImage encodes a w×h gradient as PNG or JPEG.
func testImage(t testing.TB, w, h int, format string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if format == "jpeg" {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombPNG is a PNG of a few dozen bytes whose header claims w×h pixels.
func bombPNG(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&buf, binary.BigEndian, uint32(len(data)))
		buf.WriteString(typ)
		buf.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&buf, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return buf.Bytes()
}

func TestThumbDims(t *testing.T) {
	tests := []struct {
		srcW, srcH int
		size       config.ThumbnailSize
		w, h       int
		original   bool
	}{
		{1000, 500, config.ThumbnailSize{Width: 320, Height: 240, Method: "scale"}, 320, 160, false},
		{500, 1000, config.ThumbnailSize{Width: 320, Height: 240, Method: "scale"}, 120, 240, false},
		{200, 100, config.ThumbnailSize{Width: 320, Height: 240, Method: "scale"}, 200, 100, true},
		{1000, 500, config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}, 96, 96, false},
		{20, 50, config.ThumbnailSize{Width: 32, Height: 32, Method: "crop"}, 20, 20, false},
		{30, 30, config.ThumbnailSize{Width: 32, Height: 32, Method: "crop"}, 30, 30, true},
		{100, 40, config.ThumbnailSize{Width: 64, Height: 64, Method: "crop"}, 40, 40, false},
	}
	for _, tt := range tests {
		w, h, orig := thumbDims(tt.srcW, tt.srcH, tt.size)
		if w != tt.w || h != tt.h || orig != tt.original {
			t.Errorf("thumbDims(%dx%d, %+v) = %dx%d original=%v, want %dx%d original=%v",
				tt.srcW, tt.srcH, tt.size, w, h, orig, tt.w, tt.h, tt.original)
		}
	}
}

func TestPickSize(t *testing.T) {
	sizes := config.Default().Media.Thumbnails()
	tests := []struct {
		w, h   int
		method string
		want   config.ThumbnailSize
	}{
		{32, 32, "crop", config.ThumbnailSize{Width: 32, Height: 32, Method: "crop"}},
		{40, 40, "crop", config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}},
		{500, 500, "crop", config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}}, // the largest crop
		{100, 100, "scale", config.ThumbnailSize{Width: 320, Height: 240, Method: "scale"}},
		{600, 300, "scale", config.ThumbnailSize{Width: 640, Height: 480, Method: "scale"}},
		{2000, 2000, "scale", config.ThumbnailSize{Width: 800, Height: 600, Method: "scale"}},
	}
	for _, tt := range tests {
		if got := pickSize(sizes, tt.w, tt.h, tt.method); got != tt.want {
			t.Errorf("pickSize(%d, %d, %s) = %+v, want %+v", tt.w, tt.h, tt.method, got, tt.want)
		}
	}
}

// TestImageBombRefused: a tiny PNG claiming 100000×100000 pixels (40 GB
// decoded) is refused from its header, fast and without allocating.
func TestImageBombRefused(t *testing.T) {
	s := newTestService(t, nil)
	bomb := bombPNG(100000, 100000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, _, err := s.makeThumbnail(bytes.NewReader(bomb), "image/png", config.ThumbnailSize{Width: 32, Height: 32, Method: "crop"})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	e, ok := mxerr.As(err)
	if !ok || e.Status != 413 || e.Code != "M_TOO_LARGE" {
		t.Fatalf("makeThumbnail(bomb) = %v, want 413 M_TOO_LARGE", err)
	}
	if elapsed > time.Second {
		t.Errorf("refusing took %s", elapsed)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing allocated %d bytes", alloc)
	}
}

func TestUploadDedupAndDelete(t *testing.T) {
	s := newTestService(t, nil)
	ctx := t.Context()
	body := []byte("same bytes")
	up := func() string {
		mxc, err := s.Upload(ctx, Upload{UserID: "@a:aula.test", ContentType: "text/plain", Body: bytes.NewReader(body), ContentLength: -1})
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(mxc, "mxc://aula.test/")
	}
	id1, id2 := up(), up()
	if id1 == id2 {
		t.Fatal("two uploads got the same media ID")
	}
	files := func() int {
		n := 0
		filepath.WalkDir(s.store.dir, func(p string, d os.DirEntry, err error) error {
			if rel, _ := filepath.Rel(s.store.dir, p); err == nil && !d.IsDir() && !strings.HasPrefix(rel, "tmp") {
				n++
			}
			return nil
		})
		return n
	}
	if n := files(); n != 1 {
		t.Fatalf("%d stored files for two identical uploads, want 1", n)
	}
	if _, err := s.Delete(ctx, []string{id1}); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 1 {
		t.Fatalf("file removed while another item still uses it (%d files)", n)
	}
	f, err := s.Download(ctx, "aula.test", id2, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("download = %q", got)
	}
	if _, err := s.Delete(ctx, []string{id2}); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 0 {
		t.Fatalf("%d files left after deleting every item", n)
	}
}

func TestPurgeBefore(t *testing.T) {
	s := newTestService(t, nil)
	ctx := t.Context()
	base := time.Now()
	s.now = func() time.Time { return base.Add(-100 * 24 * time.Hour) }
	old, err := s.Upload(ctx, Upload{UserID: "@a:aula.test", Body: strings.NewReader("old"), ContentLength: -1})
	if err != nil {
		t.Fatal(err)
	}
	pending, _, err := s.Create(ctx, "@a:aula.test")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return base }
	recent, err := s.Upload(ctx, Upload{UserID: "@a:aula.test", Body: strings.NewReader("recent"), ContentLength: -1})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := s.PurgeBefore(ctx, base.Add(-90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{strings.TrimPrefix(old, "mxc://aula.test/"): true, strings.TrimPrefix(pending, "mxc://aula.test/"): true}
	if len(deleted) != 2 || !want[deleted[0]] || !want[deleted[1]] {
		t.Fatalf("purged %v, want the old and the expired pending item", deleted)
	}
	if _, err := s.db.Media(ctx, strings.TrimPrefix(recent, "mxc://aula.test/")); err != nil {
		t.Fatalf("recent media purged: %v", err)
	}
	if _, err := s.db.Media(ctx, deleted[0]); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("purged media still there: %v", err)
	}
}

func TestQuota(t *testing.T) {
	s := newTestService(t, func(c *config.Config) { c.Media.UserQuota = 10 })
	ctx := t.Context()
	if _, err := s.Upload(ctx, Upload{UserID: "@a:aula.test", Body: strings.NewReader("123456"), ContentLength: -1}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Upload(ctx, Upload{UserID: "@a:aula.test", Body: strings.NewReader("123456"), ContentLength: -1})
	if e, ok := mxerr.As(err); !ok || e.Status != 403 || e.Code != "M_FORBIDDEN" {
		t.Fatalf("upload over quota = %v, want 403 M_FORBIDDEN", err)
	}
	if _, err := s.Upload(ctx, Upload{UserID: "@b:aula.test", Body: strings.NewReader("123456"), ContentLength: -1}); err != nil {
		t.Fatalf("another user's upload: %v", err)
	}
}

func TestFreeze(t *testing.T) {
	s := newTestService(t, func(c *config.Config) {
		c.OIDCProviders = []config.OIDCProvider{{Icon: "mxc://aula.test/idpicon"}, {Icon: "mxc://other.example/remote"}}
	})
	if !s.frozen(&storage.Media{MediaID: "photo", UploadedTS: 1}) {
		t.Error("freeze_unauthenticated all: old media not frozen")
	}
	if s.frozen(&storage.Media{MediaID: "idpicon", UploadedTS: time.Now().UnixMilli()}) {
		t.Error("an SSO provider's icon is frozen: login screens could not show it")
	}
	date := newTestService(t, func(c *config.Config) { c.Media.FreezeUnauthenticated = "2024-09-01" })
	if date.frozen(&storage.Media{MediaID: "a", UploadedTS: time.Date(2024, 8, 31, 0, 0, 0, 0, time.UTC).UnixMilli()}) {
		t.Error("media from before the freeze date is frozen")
	}
	if !date.frozen(&storage.Media{MediaID: "b", UploadedTS: time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC).UnixMilli()}) {
		t.Error("media from the freeze date on is not frozen")
	}
	none := newTestService(t, func(c *config.Config) { c.Media.FreezeUnauthenticated = "none" })
	if none.frozen(&storage.Media{MediaID: "c", UploadedTS: time.Now().UnixMilli()}) {
		t.Error("freeze_unauthenticated none: media frozen")
	}
}

func TestPreviewBlocksInternalAddresses(t *testing.T) {
	p := newPreviewer(config.URLPreview{Enabled: true})
	for _, a := range []string{
		"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
		"255.255.255.255", "224.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "::ffff:127.0.0.1",
		"::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "198.18.0.1", "240.0.0.1",
	} {
		if !p.blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s is not blocked", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "141.2.3.4", "2001:4860:4860::8888", "2a00:1450::1"} {
		if p.blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s is blocked", a)
		}
	}
	allowed := newPreviewer(config.URLPreview{Enabled: true, AllowIPs: []string{"10.1.0.0/16", "::1"}})
	if allowed.blocked(netip.MustParseAddr("10.1.2.3")) || allowed.blocked(netip.MustParseAddr("::1")) {
		t.Error("allow_ips entries are blocked")
	}
	if !allowed.blocked(netip.MustParseAddr("10.2.0.1")) {
		t.Error("an address outside allow_ips is not blocked")
	}
}

func TestParseOpenGraph(t *testing.T) {
	og := map[string]any{}
	parseOpenGraph(strings.NewReader(`<!doctype html><html><head><title> Page title </title>
		<meta property="og:title" content="OG title"><meta name="description" content="plain description">
		<meta property="og:image" content="http://10.0.0.1/x.png"><meta property="og:site_name" content="Uni">
		</head><body><meta property="og:description" content="in the body"></body></html>`), og)
	want := map[string]any{"og:title": "OG title", "og:description": "plain description", "og:site_name": "Uni"}
	if len(og) != len(want) {
		t.Fatalf("og = %v, want %v", og, want)
	}
	for k, v := range want {
		if og[k] != v {
			t.Errorf("og[%s] = %v, want %v", k, og[k], v)
		}
	}
	og = map[string]any{}
	parseOpenGraph(strings.NewReader(`<html><head><title>Only a title</title></head></html>`), og)
	if og["og:title"] != "Only a title" {
		t.Errorf("og = %v", og)
	}
}

// withOrientation inserts an EXIF APP1 segment with the given orientation
// after the JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16, order binary.ByteOrder) []byte {
	var tiff bytes.Buffer
	if order == binary.BigEndian {
		tiff.WriteString("MM\x00*")
	} else {
		tiff.WriteString("II*\x00")
	}
	binary.Write(&tiff, order, uint32(8))
	binary.Write(&tiff, order, uint16(1))
	binary.Write(&tiff, order, [2]uint16{0x0112, 3}) // Orientation, SHORT
	binary.Write(&tiff, order, uint32(1))            // one value
	binary.Write(&tiff, order, [2]uint16{o, 0})      // the value, padded to 4 bytes
	binary.Write(&tiff, order, uint32(0))
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xFF, 0xE1})
	binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(jpg[2:])
	return out.Bytes()
}

func TestThumbnailEXIFOrientation(t *testing.T) {
	s := newTestService(t, nil)
	// Stored 200×100: left half red, right half blue.
	img := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 200; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 100 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	tests := []struct {
		o          uint16
		order      binary.ByteOrder
		w, h       int
		redAt      image.Point // a point that must be red in the thumbnail
		blueAt     image.Point
		comparison string
	}{
		{1, binary.BigEndian, 50, 25, image.Pt(5, 12), image.Pt(45, 12), "as stored"},
		{6, binary.BigEndian, 25, 50, image.Pt(12, 5), image.Pt(12, 45), "turned clockwise: the left half on top"},
		{8, binary.LittleEndian, 25, 50, image.Pt(12, 45), image.Pt(12, 5), "turned counter-clockwise: the left half at the bottom"},
		{3, binary.LittleEndian, 50, 25, image.Pt(45, 12), image.Pt(5, 12), "upside down"},
	}
	for _, tt := range tests {
		data := withOrientation(buf.Bytes(), tt.o, tt.order)
		if got := jpegOrientation(bytes.NewReader(data)); got != int(tt.o) {
			t.Fatalf("jpegOrientation = %d, want %d", got, tt.o)
		}
		out, _, _, err := s.makeThumbnail(bytes.NewReader(data), "image/jpeg", config.ThumbnailSize{Width: 50, Height: 50, Method: "scale"})
		if err != nil {
			t.Fatal(err)
		}
		th, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if b := th.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
			t.Errorf("orientation %d: %dx%d, want %dx%d", tt.o, b.Dx(), b.Dy(), tt.w, tt.h)
			continue
		}
		r, _, bl, _ := th.At(tt.redAt.X, tt.redAt.Y).RGBA()
		r2, _, bl2, _ := th.At(tt.blueAt.X, tt.blueAt.Y).RGBA()
		if r < 0xc000 || bl > 0x4000 || r2 > 0x4000 || bl2 < 0xc000 {
			t.Errorf("orientation %d (%s): colours wrong", tt.o, tt.comparison)
		}
	}
	if got := jpegOrientation(bytes.NewReader(buf.Bytes())); got != 1 {
		t.Errorf("orientation without EXIF = %d", got)
	}
	if got := jpegOrientation(strings.NewReader("\xff\xd8\xff\xe1\xff\xff" + "Exif\x00\x00MM")); got != 1 {
		t.Errorf("orientation of a truncated segment = %d", got)
	}
}
