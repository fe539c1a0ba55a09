package clientapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// mediaDo sends a media request with a raw body and content type (the
// apitest helper always sends JSON). body nil sends no body; a reader
// that is not a *bytes.Reader is sent chunked.
func mediaDo(t *testing.T, s *apitest.Server, method, path, token, contentType string, body io.Reader) *apitest.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	return r
}

// uploadMedia uploads data and returns the media ID of its mxc:// URI.
func uploadMedia(t *testing.T, s *apitest.Server, token, contentType, fileName string, data []byte) string {
	t.Helper()
	path := "/_matrix/media/v3/upload"
	if fileName != "" {
		path += "?filename=" + strings.ReplaceAll(fileName, " ", "%20")
	}
	r := mediaDo(t, s, "POST", path, token, contentType, bytes.NewReader(data)).Expect(t, 200, "")
	id, ok := strings.CutPrefix(r.String("content_uri"), "mxc://"+apitest.ServerName+"/")
	if !ok || id == "" {
		t.Fatalf("content_uri = %q", r.String("content_uri"))
	}
	return id
}

func downloadPath(id string) string {
	return "/_matrix/client/v1/media/download/" + apitest.ServerName + "/" + id
}

func thumbnailPath(id string, w, h int, method string) string {
	return fmt.Sprintf("/_matrix/client/v1/media/thumbnail/%s/%s?width=%d&height=%d&method=%s", apitest.ServerName, id, w, h, method)
}

// encodeImage encodes a w×h gradient as PNG or JPEG.
func encodeImage(t *testing.T, w, h int, format string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if format == "jpeg" {
		err = jpeg.Encode(&buf, img, nil)
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageSize decodes an image answer and returns its format and size.
func imageSize(t *testing.T, r *apitest.Response) (string, int, int) {
	t.Helper()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("thumbnail is not an image (%d, %s): %v", r.Status, r.Header.Get("Content-Type"), err)
	}
	return format, cfg.Width, cfg.Height
}

func TestMediaUploadDownload(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		bob := s.Register("bob", "pw-bob-12345")

		// Larger than http.max_request_bytes (1 MiB): media has its own limit.
		data := make([]byte, 3<<20)
		rand.Read(data)
		id := uploadMedia(t, s, alice.Token, "application/pdf", "Bericht ä.pdf", data)

		r := mediaDo(t, s, "GET", downloadPath(id), bob.Token, "", nil).Expect(t, 200, "")
		if !bytes.Equal(r.Body, data) {
			t.Fatalf("downloaded %d bytes, not the %d uploaded", len(r.Body), len(data))
		}
		want := map[string]string{
			"Content-Type":                 "application/pdf",
			"Content-Disposition":          "attachment; filename*=utf-8''Bericht%20%C3%A4.pdf",
			"Content-Security-Policy":      "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
			"X-Content-Type-Options":       "nosniff",
			"Cross-Origin-Resource-Policy": "cross-origin",
			"Content-Length":               strconv.Itoa(len(data)),
		}
		for k, v := range want {
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		// The file name in the path overrides the upload's.
		r = mediaDo(t, s, "GET", downloadPath(id)+"/other%20name.pdf", bob.Token, "", nil).Expect(t, 200, "")
		if got := r.Header.Get("Content-Disposition"); got != `attachment; filename="other name.pdf"` {
			t.Errorf("Content-Disposition with file name = %q", got)
		}

		// Quotes in a file name are escaped; control characters are refused.
		quoted := uploadMedia(t, s, alice.Token, "text/plain", `say%20"hi".txt`, []byte("hi"))
		r = mediaDo(t, s, "GET", downloadPath(quoted), alice.Token, "", nil).Expect(t, 200, "")
		if got := r.Header.Get("Content-Disposition"); got != `inline; filename="say \"hi\".txt"` {
			t.Errorf("Content-Disposition with quotes = %q", got)
		}
		mediaDo(t, s, "POST", "/_matrix/media/v3/upload?filename=a%0D%0ASet-Cookie:x", alice.Token, "text/plain", strings.NewReader("x")).
			Expect(t, 400, "M_INVALID_PARAM")
		r = mediaDo(t, s, "GET", downloadPath(quoted)+"/a%0D%0Ab.txt", alice.Token, "", nil).Expect(t, 200, "")
		if got := r.Header.Get("Content-Disposition"); got != `inline; filename*=utf-8''a%0D%0Ab.txt` || r.Header.Get("Set-Cookie") != "" {
			t.Errorf("Content-Disposition with a line break = %q", got)
		}

		// HTML and SVG are never inline; images and plain text are.
		for ct, disp := range map[string]string{
			"text/html":                 "attachment",
			"image/svg+xml":             "attachment",
			"text/plain; charset=utf-8": "inline",
			"image/png":                 "inline",
		} {
			id := uploadMedia(t, s, alice.Token, ct, "", []byte("<script>alert(1)</script>"+ct))
			r := mediaDo(t, s, "GET", downloadPath(id), alice.Token, "", nil).Expect(t, 200, "")
			if r.Header.Get("Content-Type") != ct || r.Header.Get("Content-Disposition") != disp {
				t.Errorf("%s: Content-Type %q, Content-Disposition %q; want %q", ct, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"), disp)
			}
		}
		// No content type: served as application/octet-stream.
		noType := uploadMedia(t, s, alice.Token, "", "", []byte("bytes"))
		r = mediaDo(t, s, "GET", downloadPath(noType), alice.Token, "", nil).Expect(t, 200, "")
		if r.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("no content type served as %q", r.Header.Get("Content-Type"))
		}
		// Range requests work (video seeking).
		req, _ := http.NewRequest("GET", s.URL+downloadPath(id), nil)
		req.Header.Set("Authorization", "Bearer "+bob.Token)
		req.Header.Set("Range", "bytes=10-19")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 || !bytes.Equal(part, data[10:20]) {
			t.Errorf("range request: %d, %d bytes", resp.StatusCode, len(part))
		}

		// Behind login: no token is 401; the legacy endpoints refuse all
		// media (freeze_unauthenticated: all).
		mediaDo(t, s, "GET", downloadPath(id), "", "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		mediaDo(t, s, "GET", "/_matrix/media/v3/download/"+apitest.ServerName+"/"+id, "", "", nil).Expect(t, 404, "M_NOT_FOUND")
		mediaDo(t, s, "GET", "/_matrix/media/v3/thumbnail/"+apitest.ServerName+"/"+id+"?width=32&height=32", "", "", nil).Expect(t, 404, "M_NOT_FOUND")
		// Unknown and remote media.
		mediaDo(t, s, "GET", downloadPath("nosuchmedia"), alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")
		mediaDo(t, s, "GET", "/_matrix/client/v1/media/download/other.example/"+id, alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")
		// Uploading needs a token.
		mediaDo(t, s, "POST", "/_matrix/media/v3/upload", "", "text/plain", strings.NewReader("x")).Expect(t, 401, "M_MISSING_TOKEN")

		r = s.Do("GET", "/_matrix/client/v1/media/config", alice.Token, nil).Expect(t, 200, "")
		if r.JSON["m.upload.size"] != float64(50<<20) {
			t.Errorf("media config = %s", r.Body)
		}
		s.Do("GET", "/_matrix/media/v3/config", alice.Token, nil).Expect(t, 200, "")
		s.Do("GET", "/_matrix/client/v1/media/config", "", nil).Expect(t, 401, "M_MISSING_TOKEN")
	})
}

func TestMediaLegacyBeforeFreeze(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Media.FreezeUnauthenticated = time.Now().Add(time.Hour).Format(time.RFC3339)
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		id := uploadMedia(t, s, alice.Token, "text/plain", "", []byte("old file"))
		r := mediaDo(t, s, "GET", "/_matrix/media/v3/download/"+apitest.ServerName+"/"+id, "", "", nil).Expect(t, 200, "")
		if string(r.Body) != "old file" {
			t.Errorf("legacy download = %q", r.Body)
		}
	})
}

func TestMediaAsyncUpload(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		bob := s.Register("bob", "pw-bob-12345")
		r := s.Do("POST", "/_matrix/media/v1/create", alice.Token, nil).Expect(t, 200, "")
		id, ok := strings.CutPrefix(r.String("content_uri"), "mxc://"+apitest.ServerName+"/")
		exp, _ := r.JSON["unused_expires_at"].(float64)
		if !ok || int64(exp) <= time.Now().UnixMilli() {
			t.Fatalf("create = %s", r.Body)
		}
		mediaDo(t, s, "GET", downloadPath(id)+"?timeout_ms=0", alice.Token, "", nil).Expect(t, 504, "M_NOT_YET_UPLOADED")
		mediaDo(t, s, "GET", thumbnailPath(id, 32, 32, "crop")+"&timeout_ms=0", alice.Token, "", nil).Expect(t, 504, "M_NOT_YET_UPLOADED")

		// A download waiting for the upload gets it once it arrives.
		waited := make(chan *apitest.Response, 1)
		go func() {
			waited <- mediaDo(t, s, "GET", downloadPath(id)+"?timeout_ms=10000", bob.Token, "", nil)
		}()
		time.Sleep(100 * time.Millisecond)

		put := "/_matrix/media/v3/upload/" + apitest.ServerName + "/" + id + "?filename=a.txt"
		mediaDo(t, s, "PUT", put, bob.Token, "text/plain", strings.NewReader("later")).Expect(t, 403, "M_FORBIDDEN")
		r = mediaDo(t, s, "PUT", put, alice.Token, "text/plain", strings.NewReader("later")).Expect(t, 200, "")
		if string(bytes.TrimSpace(r.Body)) != "{}" {
			t.Errorf("upload answer = %s", r.Body)
		}
		mediaDo(t, s, "PUT", put, alice.Token, "text/plain", strings.NewReader("again")).Expect(t, 409, "M_CANNOT_OVERWRITE_MEDIA")
		select {
		case r := <-waited:
			r.Expect(t, 200, "")
			if string(r.Body) != "later" || r.Header.Get("Content-Disposition") != `inline; filename="a.txt"` {
				t.Errorf("waiting download = %q, %q", r.Body, r.Header.Get("Content-Disposition"))
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the waiting download did not finish")
		}
		mediaDo(t, s, "PUT", "/_matrix/media/v3/upload/"+apitest.ServerName+"/nosuchmedia", alice.Token, "text/plain", strings.NewReader("x")).Expect(t, 404, "M_NOT_FOUND")
		mediaDo(t, s, "PUT", "/_matrix/media/v3/upload/other.example/"+id, alice.Token, "text/plain", strings.NewReader("x")).Expect(t, 404, "M_NOT_FOUND")

		// At most media.max_pending_uploads (5) unused IDs per user.
		for i := 0; i < 5; i++ {
			s.Do("POST", "/_matrix/media/v1/create", bob.Token, nil).Expect(t, 200, "")
		}
		s.Do("POST", "/_matrix/media/v1/create", bob.Token, nil).Expect(t, 429, "M_LIMIT_EXCEEDED")
	})
}

func TestMediaUploadLimit(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Media.MaxUploadSize = 4096 }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		uploadMedia(t, s, alice.Token, "application/octet-stream", "", make([]byte, 4096))
		// Declared too large.
		mediaDo(t, s, "POST", "/_matrix/media/v3/upload", alice.Token, "application/octet-stream", bytes.NewReader(make([]byte, 5000))).
			Expect(t, 413, "M_TOO_LARGE")
		// Too large while streaming (chunked, no Content-Length).
		mediaDo(t, s, "POST", "/_matrix/media/v3/upload", alice.Token, "application/octet-stream", io.MultiReader(bytes.NewReader(make([]byte, 5000)))).
			Expect(t, 413, "M_TOO_LARGE")
		r := s.Do("POST", "/_matrix/media/v1/create", alice.Token, nil).Expect(t, 200, "")
		id := strings.TrimPrefix(r.String("content_uri"), "mxc://"+apitest.ServerName+"/")
		mediaDo(t, s, "PUT", "/_matrix/media/v3/upload/"+apitest.ServerName+"/"+id, alice.Token, "text/plain", io.MultiReader(bytes.NewReader(make([]byte, 5000)))).
			Expect(t, 413, "M_TOO_LARGE")
		// The ID is still unused and can take a smaller upload.
		mediaDo(t, s, "PUT", "/_matrix/media/v3/upload/"+apitest.ServerName+"/"+id, alice.Token, "text/plain", strings.NewReader("fits")).Expect(t, 200, "")
		r = s.Do("GET", "/_matrix/client/v1/media/config", alice.Token, nil).Expect(t, 200, "")
		if r.JSON["m.upload.size"] != float64(4096) {
			t.Errorf("media config = %s", r.Body)
		}
	})
}

func TestMediaThumbnails(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		wide := uploadMedia(t, s, alice.Token, "image/png", "wide.png", encodeImage(t, 1000, 500, "png"))
		photo := uploadMedia(t, s, alice.Token, "image/jpeg", "photo.jpg", encodeImage(t, 1200, 900, "jpeg"))
		small := uploadMedia(t, s, alice.Token, "image/png", "small.png", encodeImage(t, 50, 40, "png"))

		tests := []struct {
			id            string
			w, h          int
			method        string
			format        string
			wantW, wantH  int
			originalBytes bool
		}{
			{wide, 96, 96, "crop", "png", 96, 96, false},
			{wide, 32, 32, "crop", "png", 32, 32, false},
			{wide, 320, 240, "scale", "png", 320, 160, false},
			{wide, 100, 100, "scale", "png", 320, 160, false}, // the smallest configured size that is large enough
			{wide, 700, 500, "scale", "png", 800, 400, false},
			{photo, 640, 480, "scale", "jpeg", 640, 480, false},
			{photo, 96, 96, "crop", "jpeg", 96, 96, false},
			{small, 320, 240, "scale", "png", 50, 40, true}, // never upscaled: the original
		}
		for _, tt := range tests {
			r := mediaDo(t, s, "GET", thumbnailPath(tt.id, tt.w, tt.h, tt.method), alice.Token, "", nil).Expect(t, 200, "")
			format, w, h := imageSize(t, r)
			if format != tt.format || w != tt.wantW || h != tt.wantH {
				t.Errorf("thumbnail %dx%d %s: %s %dx%d, want %s %dx%d", tt.w, tt.h, tt.method, format, w, h, tt.format, tt.wantW, tt.wantH)
			}
			if r.Header.Get("Content-Type") != "image/"+tt.format || !strings.HasPrefix(r.Header.Get("Content-Disposition"), "inline") ||
				r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("thumbnail headers: %v", r.Header)
			}
			// Served again from the cache, byte for byte.
			again := mediaDo(t, s, "GET", thumbnailPath(tt.id, tt.w, tt.h, tt.method)+"&animated=true", alice.Token, "", nil).Expect(t, 200, "")
			if !bytes.Equal(again.Body, r.Body) {
				t.Errorf("thumbnail %dx%d %s differs the second time", tt.w, tt.h, tt.method)
			}
		}
		// Default method is scale.
		r := mediaDo(t, s, "GET", fmt.Sprintf("/_matrix/client/v1/media/thumbnail/%s/%s?width=320&height=240", apitest.ServerName, wide), alice.Token, "", nil).Expect(t, 200, "")
		if _, w, h := imageSize(t, r); w != 320 || h != 160 {
			t.Errorf("default method: %dx%d", w, h)
		}

		bad := fmt.Sprintf("/_matrix/client/v1/media/thumbnail/%s/%s", apitest.ServerName, wide)
		mediaDo(t, s, "GET", bad+"?width=32", alice.Token, "", nil).Expect(t, 400, "M_MISSING_PARAM")
		mediaDo(t, s, "GET", bad+"?width=-1&height=32", alice.Token, "", nil).Expect(t, 400, "M_INVALID_PARAM")
		mediaDo(t, s, "GET", bad+"?width=32&height=32&method=stretch", alice.Token, "", nil).Expect(t, 400, "M_INVALID_PARAM")
		mediaDo(t, s, "GET", bad+"?width=32&height=32&animated=maybe", alice.Token, "", nil).Expect(t, 400, "M_INVALID_PARAM")
		mediaDo(t, s, "GET", thumbnailPath(wide, 32, 32, "crop"), "", "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		text := uploadMedia(t, s, alice.Token, "text/plain", "", []byte("not an image"))
		mediaDo(t, s, "GET", thumbnailPath(text, 32, 32, "crop"), alice.Token, "", nil).Expect(t, 400, "M_UNKNOWN")
		broken := uploadMedia(t, s, alice.Token, "image/png", "", []byte("not a png"))
		mediaDo(t, s, "GET", thumbnailPath(broken, 32, 32, "crop"), alice.Token, "", nil).Expect(t, 400, "M_UNKNOWN")
	})
}

// bombPNG is a PNG of a few dozen bytes whose header claims w×h pixels.
func bombPNG(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&buf, binary.BigEndian, uint32(len(data)))
		buf.WriteString(typ)
		buf.Write(data)
		binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
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

func TestMediaImageBomb(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		bomb := bombPNG(100000, 100000) // 10 gigapixels, 40 GB decoded
		id := uploadMedia(t, s, alice.Token, "image/png", "bomb.png", bomb)
		start := time.Now()
		mediaDo(t, s, "GET", thumbnailPath(id, 96, 96, "crop"), alice.Token, "", nil).Expect(t, 413, "M_TOO_LARGE")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refusing the image bomb took %s", d)
		}
		// The file itself stays downloadable.
		r := mediaDo(t, s, "GET", downloadPath(id), alice.Token, "", nil).Expect(t, 200, "")
		if !bytes.Equal(r.Body, bomb) {
			t.Error("bomb download differs")
		}
	})
}

func TestMediaAdmin(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		root := s.RegisterAdmin("root", "pw-root-1234")
		alice := s.Register("alice", "pw-alice-1234")
		img := uploadMedia(t, s, alice.Token, "image/png", "cat.png", encodeImage(t, 400, 300, "png"))
		doc := uploadMedia(t, s, alice.Token, "text/plain", "", []byte("notes"))
		mediaDo(t, s, "GET", thumbnailPath(img, 96, 96, "crop"), alice.Token, "", nil).Expect(t, 200, "")

		list := "/_synapse/admin/v1/users/" + alice.ID + "/media"
		s.Do("GET", list, alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		r := s.Do("GET", list, root.Token, nil).Expect(t, 200, "")
		media, _ := r.JSON["media"].([]any)
		if r.JSON["total"] != float64(2) || len(media) != 2 {
			t.Fatalf("user media = %s", r.Body)
		}
		first := media[0].(map[string]any)
		if first["media_id"] != img || first["media_type"] != "image/png" || first["upload_name"] != "cat.png" || first["quarantined_by"] != nil {
			t.Errorf("first item = %v", first)
		}
		r = s.Do("GET", list+"?limit=1", root.Token, nil).Expect(t, 200, "")
		if r.JSON["next_token"] != float64(1) || len(r.JSON["media"].([]any)) != 1 {
			t.Errorf("first page = %s", r.Body)
		}

		// Quarantined media is gone for everyone, thumbnails included.
		quarantine := "/_synapse/admin/v1/media/quarantine/" + apitest.ServerName + "/" + img
		s.Do("POST", quarantine, alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("POST", quarantine, root.Token, nil).Expect(t, 200, "")
		mediaDo(t, s, "GET", downloadPath(img), alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")
		mediaDo(t, s, "GET", thumbnailPath(img, 96, 96, "crop"), alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")
		r = s.Do("GET", list, root.Token, nil).Expect(t, 200, "")
		if r.JSON["media"].([]any)[0].(map[string]any)["quarantined_by"] != root.ID {
			t.Errorf("quarantined item = %s", r.Body)
		}
		s.Do("POST", "/_synapse/admin/v1/media/quarantine/"+apitest.ServerName+"/nosuchmedia", root.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		info := "/_synapse/admin/v1/media/" + apitest.ServerName + "/" + img
		s.Do("GET", info, alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		r = s.Do("GET", info, root.Token, nil).Expect(t, 200, "")
		mi, _ := r.JSON["media_info"].(map[string]any)
		if mi["media_id"] != img || mi["user_id"] != alice.ID || mi["quarantined_by"] != root.ID || mi["media_origin"] != apitest.ServerName || len(mi["sha256"].(string)) != 64 {
			t.Errorf("media info = %s", r.Body)
		}
		s.Do("GET", "/_synapse/admin/v1/media/"+apitest.ServerName+"/nosuchmedia", root.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		// Lifting the quarantine brings it back; then quarantine it again.
		s.Do("POST", "/_synapse/admin/v1/media/unquarantine/"+apitest.ServerName+"/"+img, root.Token, nil).Expect(t, 200, "")
		mediaDo(t, s, "GET", downloadPath(img), alice.Token, "", nil).Expect(t, 200, "")
		s.Do("POST", quarantine, root.Token, nil).Expect(t, 200, "")
		mediaDo(t, s, "GET", downloadPath(img), alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")

		// Deleted media is gone.
		del := "/_synapse/admin/v1/media/" + apitest.ServerName + "/" + doc
		s.Do("DELETE", del, alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		r = s.Do("DELETE", del, root.Token, nil).Expect(t, 200, "")
		if r.JSON["total"] != float64(1) || r.JSON["deleted_media"].([]any)[0] != doc {
			t.Errorf("delete = %s", r.Body)
		}
		mediaDo(t, s, "GET", downloadPath(doc), alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("DELETE", del, root.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		// Purge: everything not downloaded since before_ts.
		kept := uploadMedia(t, s, alice.Token, "text/plain", "", []byte("avatar"))
		s.Do("PUT", "/_matrix/client/v3/profile/"+alice.ID+"/avatar_url", alice.Token,
			map[string]string{"avatar_url": "mxc://" + apitest.ServerName + "/" + kept}).Expect(t, 200, "")
		fresh := uploadMedia(t, s, alice.Token, "text/plain", "", []byte("fresh"))
		s.Do("POST", "/_synapse/admin/v1/media/delete", root.Token, nil).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("POST", "/_synapse/admin/v1/media/delete?before_ts=abc", root.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		r = s.Do("POST", fmt.Sprintf("/_synapse/admin/v1/media/%s/delete?before_ts=%d", apitest.ServerName, time.Now().Add(time.Minute).UnixMilli()), root.Token, nil).Expect(t, 200, "")
		if r.JSON["total"] != float64(2) { // img (quarantined) and fresh; the avatar is kept
			t.Errorf("purge = %s", r.Body)
		}
		mediaDo(t, s, "GET", downloadPath(fresh), alice.Token, "", nil).Expect(t, 404, "M_NOT_FOUND")
		mediaDo(t, s, "GET", downloadPath(kept), alice.Token, "", nil).Expect(t, 200, "")

		r = s.Do("DELETE", list, root.Token, nil).Expect(t, 200, "")
		if r.JSON["total"] != float64(1) {
			t.Errorf("delete user media = %s", r.Body)
		}
		r = s.Do("GET", list, root.Token, nil).Expect(t, 200, "")
		if r.JSON["total"] != float64(0) {
			t.Errorf("user media after delete = %s", r.Body)
		}
	})
}

// benchServer starts a SQLite server with one user for the HTTP media
// benchmarks.
func benchServer(b *testing.B) (*apitest.Server, apitest.User) {
	c := apitest.Config(b, "sqlite:"+b.TempDir()+"/aula.db")
	s := apitest.Start(b, c)
	u := s.Register("bench", "pw-bench-1234")
	return s, u
}

const benchMediaSize = 8 << 20

// BenchmarkMediaHTTPUpload uploads a new 8 MiB file per iteration over
// loopback HTTP (figures in docs/media.md).
func BenchmarkMediaHTTPUpload(b *testing.B) {
	s, u := benchServer(b)
	data := make([]byte, benchMediaSize)
	rand.Read(data)
	client := &http.Client{}
	b.SetBytes(benchMediaSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint64(data, uint64(i)) // no deduplication
		req, _ := http.NewRequest("POST", s.URL+"/_matrix/media/v3/upload", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+u.Token)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("upload: %d", resp.StatusCode)
		}
	}
}

// BenchmarkMediaHTTPDownload downloads an 8 MiB file per iteration over
// loopback HTTP.
func BenchmarkMediaHTTPDownload(b *testing.B) {
	s, u := benchServer(b)
	data := make([]byte, benchMediaSize)
	rand.Read(data)
	req, _ := http.NewRequest("POST", s.URL+"/_matrix/media/v3/upload", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var up struct {
		ContentURI string `json:"content_uri"`
	}
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	path := downloadPath(strings.TrimPrefix(up.ContentURI, "mxc://"+apitest.ServerName+"/"))
	client := &http.Client{}
	b.SetBytes(benchMediaSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+u.Token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != benchMediaSize {
			b.Fatalf("download: %d, %d bytes", resp.StatusCode, n)
		}
	}
}

func TestMediaPreviewURL(t *testing.T) {
	var hits atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<html><head><title>Intranet</title><meta property="og:title" content="Hörsaal plan">`+
			`<meta property="og:description" content="Rooms and times"></head><body>secret</body></html>`)
	}))
	defer site.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(site.URL, "http://"), ":")
	preview := func(u string) string { return "/_matrix/client/v1/media/preview_url?url=" + url.QueryEscape(u) }

	// Off by default.
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		s.Do("GET", preview(site.URL), alice.Token, nil).Expect(t, 404, "M_UNRECOGNIZED")
	})
	// On: internal addresses are refused, by address and by name.
	apitest.ForEachServer(t, func(c *config.Config) { c.Media.URLPreview.Enabled = true }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		before := hits.Load()
		s.Do("GET", preview(site.URL), alice.Token, nil).Expect(t, 502, "M_UNKNOWN")
		s.Do("GET", preview("http://localhost:"+port+"/"), alice.Token, nil).Expect(t, 502, "M_UNKNOWN")
		s.Do("GET", preview("http://[::ffff:127.0.0.1]:"+port+"/"), alice.Token, nil).Expect(t, 502, "M_UNKNOWN")
		if hits.Load() != before {
			t.Error("the preview fetched from a loopback address")
		}
		s.Do("GET", "/_matrix/client/v1/media/preview_url", alice.Token, nil).Expect(t, 400, "M_MISSING_PARAM")
		s.Do("GET", preview("file:///etc/passwd"), alice.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", preview(site.URL), "", nil).Expect(t, 401, "M_MISSING_TOKEN")
	})
	// Explicitly allowed addresses are fetched.
	apitest.ForEachServer(t, func(c *config.Config) {
		c.Media.URLPreview.Enabled = true
		c.Media.URLPreview.AllowIPs = []string{"127.0.0.1"}
	}, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-1234")
		r := s.Do("GET", preview(site.URL+"/page#frag"), alice.Token, nil).Expect(t, 200, "")
		if r.String("og:title") != "Hörsaal plan" || r.String("og:description") != "Rooms and times" || r.JSON["og:image"] != nil {
			t.Errorf("preview = %s", r.Body)
		}
		n := hits.Load()
		s.Do("GET", preview(site.URL+"/page"), alice.Token, nil).Expect(t, 200, "")
		if hits.Load() != n {
			t.Error("a second preview of the same URL was fetched again, not cached")
		}
	})
}
