package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// rawConn is one keep-alive HTTP/1.1 connection that the send scenario's
// workers use for the measured requests. net/http's client costs about
// 100–150 µs of CPU per request here (two goroutines per connection and
// their handoffs), as much as a third of what the server spends on a
// PUT /send; on a machine where the load tool shares the server's cores
// that is taken from the server. This client writes each request in one
// write and reads the answer with one buffered reader, as wrk does. It
// speaks plain http only (newRawConn reports ok=false for https targets,
// which then use the ordinary client), and it dials through the same
// loopback-only dialer.
type rawConn struct {
	host    string // host:port of the target
	timeout time.Duration
	dialer  *net.Dialer
	conn    net.Conn
	r       *bufio.Reader
	req     bytes.Buffer
}

// newRawConn returns a connection to target, dialled on first use, or
// ok=false when target is not plain http.
func newRawConn(target string, timeout time.Duration) (c *rawConn, ok bool) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || checkLoopbackHost(u.Hostname()) != nil {
		return nil, false
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return &rawConn{host: host, timeout: timeout, dialer: &net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}}, true
}

// close drops the connection; the next request dials a new one.
func (c *rawConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// do sends one request with a JSON body and returns the status and body of
// the answer. A transport error closes the connection.
func (c *rawConn) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	status, data, err := c.roundTrip(ctx, method, path, token, body)
	if err != nil {
		c.close()
	}
	return status, data, err
}

func (c *rawConn) roundTrip(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	if c.conn == nil {
		conn, err := c.dialer.DialContext(ctx, "tcp", c.host)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, nil, err
	}
	c.req.Reset()
	fmt.Fprintf(&c.req, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		method, path, c.host, token, len(body))
	c.req.Write(body)
	if _, err := c.conn.Write(c.req.Bytes()); err != nil {
		return 0, nil, err
	}
	return c.readResponse()
}

// readResponse reads a status line, headers and a body framed by
// Content-Length or chunked encoding (at most 1 MiB).
func (c *rawConn) readResponse() (int, []byte, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, nil, err
	}
	proto, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closeAfter := -1, false, false
	for {
		h, err := c.r.ReadString('\n')
		if err != nil {
			return 0, nil, err
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			if length, err = strconv.Atoi(value); err != nil || length < 0 || length > 1<<20 {
				return 0, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case "transfer-encoding":
			chunked = strings.EqualFold(value, "chunked")
		case "connection":
			closeAfter = strings.EqualFold(value, "close")
		}
	}
	var body []byte
	switch {
	case chunked:
		body, err = c.readChunked()
	case length >= 0:
		body = make([]byte, length)
		_, err = io.ReadFull(c.r, body)
	default: // framed by the end of the connection
		body, err = io.ReadAll(io.LimitReader(c.r, 1<<20))
		closeAfter = true
	}
	if err != nil {
		return 0, nil, err
	}
	if closeAfter {
		c.close()
	}
	return status, body, nil
}

func (c *rawConn) readChunked() ([]byte, error) {
	var body []byte
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		sizeText, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 32)
		if err != nil || size < 0 || len(body)+int(size) > 1<<20 {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			for { // trailers, up to the blank line
				t, err := c.r.ReadString('\n')
				if err != nil {
					return nil, err
				}
				if strings.TrimRight(t, "\r\n") == "" {
					return body, nil
				}
			}
		}
		chunk := make([]byte, size+2) // with its CRLF
		if _, err := io.ReadFull(c.r, chunk); err != nil {
			return nil, err
		}
		body = append(body, chunk[:size]...)
	}
}

// send is client.send over the raw connection.
func (c *rawConn) send(ctx context.Context, token, roomID, txnID, text string) (string, error) {
	body, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": text}) // strings always marshal
	status, data, err := c.do(ctx, "PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+url.PathEscape(txnID), token, body)
	if err != nil {
		return "", err
	}
	if status/100 != 2 {
		var e struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}
		json.Unmarshal(data, &e) // a non-JSON body leaves the fields empty
		return "", &apiError{Status: status, Errcode: e.Errcode, Msg: e.Error}
	}
	var out struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.EventID == "" {
		return "", errors.New("PUT /send: answer without event_id")
	}
	return out.EventID, nil
}
