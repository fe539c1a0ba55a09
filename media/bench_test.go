package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
)

// Benchmarks of the media service without HTTP (SQLite, files in a
// temporary directory); the HTTP round trip is measured by
// clientapi's BenchmarkMediaHTTP*. Figures are in docs/media.md.
//
//	go test -run X -bench . -benchtime 20x ./media/

const benchFileSize = 8 << 20

// BenchmarkUpload stores a new 8 MiB file per iteration: hashing, writing
// the temporary file, renaming it into place and the metadata row.
func BenchmarkUpload(b *testing.B) {
	s := newTestService(b, nil)
	data := make([]byte, benchFileSize)
	rand.Read(data)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint64(data, uint64(i)) // a new file each time, no deduplication
		if _, err := s.Upload(b.Context(), Upload{UserID: "@a:aula.test", ContentType: "application/octet-stream",
			Body: bytes.NewReader(data), ContentLength: benchFileSize}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDownload opens and reads an 8 MiB file per iteration (from the
// page cache after the first).
func BenchmarkDownload(b *testing.B) {
	s := newTestService(b, nil)
	data := make([]byte, benchFileSize)
	rand.Read(data)
	mxc, err := s.Upload(b.Context(), Upload{UserID: "@a:aula.test", Body: bytes.NewReader(data), ContentLength: -1})
	if err != nil {
		b.Fatal(err)
	}
	id := strings.TrimPrefix(mxc, "mxc://aula.test/")
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := s.Download(b.Context(), "aula.test", id, 0, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkThumbnail generates (not from the cache) thumbnails of a
// 12-megapixel JPEG photo and a full-HD PNG screenshot.
func BenchmarkThumbnail(b *testing.B) {
	s := newTestService(b, nil)
	images := []struct {
		name, contentType string
		data              []byte
	}{
		{"jpeg-4000x3000", "image/jpeg", testImage(b, 4000, 3000, "jpeg")},
		{"png-1920x1080", "image/png", testImage(b, 1920, 1080, "png")},
	}
	sizes := []config.ThumbnailSize{
		{Width: 96, Height: 96, Method: "crop"},
		{Width: 320, Height: 240, Method: "scale"},
		{Width: 800, Height: 600, Method: "scale"},
	}
	for _, img := range images {
		for _, size := range sizes {
			name := img.name + "/" + size.Method + "-" + itoa(size.Width) + "x" + itoa(size.Height)
			b.Run(name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, _, _, err := s.makeThumbnail(bytes.NewReader(img.data), img.contentType, size); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkImageBombRefused measures refusing a PNG whose header claims
// 100000×100000 pixels.
func BenchmarkImageBombRefused(b *testing.B) {
	s := newTestService(b, nil)
	bomb := bombPNG(100000, 100000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := s.makeThumbnail(bytes.NewReader(bomb), "image/png", config.ThumbnailSize{Width: 96, Height: 96, Method: "crop"}); err == nil {
			b.Fatal("image bomb accepted")
		}
	}
}
