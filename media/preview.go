package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/html"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
)

// Link previews (GET /_matrix/client/v1/media/preview_url): off unless
// media.url_preview.enabled. The fetcher refuses every internal address
// (loopback, private, link-local, carrier-grade NAT, documentation and
// reserved ranges, and IPv6 forms that embed IPv4 addresses) unless
// media.url_preview.allow_ips lists it. The check runs on the address each
// connection is actually opened to, after DNS resolution and on every
// redirect, so neither DNS rebinding nor a redirect to an internal
// address gets through.

// previewMaxBytes is how much of a page is read for its metadata.
const previewMaxBytes = 1 << 20

// previewCacheTTL is how long a preview is reused.
const previewCacheTTL = time.Hour

// blockedRanges are refused on top of what netip classifies as private,
// loopback, link-local, multicast or unspecified.
var blockedRanges = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
		"64:ff9b::/96", "64:ff9b:1::/48", "2001::/32", "2001:db8::/32", "2002::/16", "fec0::/10", "100::/64",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// previewer fetches pages for link previews.
type previewer struct {
	enabled bool
	allow   []netip.Prefix
	client  *http.Client

	mu    sync.Mutex
	cache map[string]previewEntry
}

type previewEntry struct {
	og      map[string]any
	expires time.Time
}

func newPreviewer(cfg config.URLPreview) *previewer {
	p := &previewer{enabled: cfg.Enabled, cache: map[string]previewEntry{}}
	for _, a := range cfg.AllowIPs {
		if prefix, err := config.ParseProxy(a); err == nil { // Validate reported bad ones
			p.allow = append(p.allow, prefix)
		}
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: p.checkDial}
	p.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:                  nil, // never a proxy from the environment: it would dial for us
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    5 * time.Second,
			ResponseHeaderTimeout:  5 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConns:           10,
			IdleConnTimeout:        30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("redirect to a non-HTTP URL")
			}
			return nil
		},
	}
	return p
}

// errBlockedAddress is returned when a preview would connect to an
// internal address.
var errBlockedAddress = errors.New("media: preview: address not allowed")

// checkDial runs just before each connection is opened, with the resolved
// address.
func (p *previewer) checkDial(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return errBlockedAddress
	}
	if p.blocked(ap.Addr()) {
		return errBlockedAddress
	}
	return nil
}

// blocked reports whether previews must not connect to ip.
func (p *previewer) blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, a := range p.allow {
		if a.Contains(ip) {
			return false
		}
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, r := range blockedRanges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// PreviewEnabled reports whether link previews are on.
func (s *Service) PreviewEnabled() bool { return s.preview.enabled }

// PreviewURL returns the OpenGraph data of the page at rawURL: og:title,
// og:description, og:site_name, og:type, og:url (the page's <title> and
// description when it has no og: tags). Images are not fetched, so
// og:image is never set. 404 M_UNRECOGNIZED when previews are off.
func (s *Service) PreviewURL(ctx context.Context, rawURL string) (map[string]any, error) {
	p := s.preview
	if !p.enabled {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "URL previews are disabled on this server")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, mxerr.InvalidParam("url must be an absolute http or https URL")
	}
	u.Fragment = ""
	key := u.String()
	now := s.now()
	p.mu.Lock()
	if e, ok := p.cache[key]; ok && now.Before(e.expires) {
		p.mu.Unlock()
		return e.og, nil
	}
	p.mu.Unlock()

	og, err := p.fetch(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Info("media: URL preview failed", "err", err) // the URL may be private: not logged
		return nil, mxerr.New(http.StatusBadGateway, "M_UNKNOWN", "Could not fetch a preview of that URL")
	}
	p.mu.Lock()
	if len(p.cache) >= 1024 {
		clear(p.cache)
	}
	p.cache[key] = previewEntry{og: og, expires: now.Add(previewCacheTTL)}
	p.mu.Unlock()
	return og, nil
}

// fetch downloads the page and reads its metadata.
func (p *previewer) fetch(ctx context.Context, target string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "aula (Matrix homeserver) link preview")
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	og := map[string]any{}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct != "text/html" && ct != "application/xhtml+xml" {
		return og, nil // nothing to show without fetching and storing the file
	}
	parseOpenGraph(io.LimitReader(resp.Body, previewMaxBytes), og)
	if _, ok := og["og:url"]; !ok {
		og["og:url"] = resp.Request.URL.String()
	}
	return og, nil
}

// parseOpenGraph collects og: meta tags, the <title> and the description
// from the page's head into og.
func parseOpenGraph(r io.Reader, og map[string]any) {
	z := html.NewTokenizer(r)
	var title, description string
	inTitle := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			goto done
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "title":
				inTitle = true
			case "body":
				goto done
			case "meta":
				var prop, content string
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					switch string(k) {
					case "property", "name":
						prop = strings.ToLower(string(v))
					case "content":
						content = string(v)
					}
				}
				content = strings.TrimSpace(content)
				switch {
				case content == "":
				case strings.HasPrefix(prop, "og:") && prop != "og:image" && !strings.HasPrefix(prop, "og:image:") &&
					!strings.HasPrefix(prop, "og:video") && !strings.HasPrefix(prop, "og:audio"):
					if _, ok := og[prop]; !ok && len(og) < 32 {
						og[prop] = truncate(content, 1000)
					}
				case prop == "description":
					description = content
				}
			}
		case html.TextToken:
			if inTitle && title == "" {
				title = strings.TrimSpace(string(z.Text()))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "title":
				inTitle = false
			case "head":
				goto done
			}
		}
	}
done:
	if _, ok := og["og:title"]; !ok && title != "" {
		og["og:title"] = truncate(title, 1000)
	}
	if _, ok := og["og:description"]; !ok && description != "" {
		og["og:description"] = truncate(description, 1000)
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
