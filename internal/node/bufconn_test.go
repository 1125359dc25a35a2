package node

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
)

// countingConn is a connection whose reads come from a buffer and are
// counted.
type countingConn struct {
	net.Conn
	data  *bytes.Reader
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.data.Read(p)
}

// TestReadBufferedConnReadsFramesTogether: 100 small HTTP/2-sized frames
// (a 9-byte header, then a 4-byte payload, as window updates are) read the
// way the HTTP/2 server reads them take one read of the connection, not 200.
func TestReadBufferedConnReadsFramesTogether(t *testing.T) {
	var wire bytes.Buffer
	for i := range 100 {
		wire.Write([]byte{0, 0, 4, 8, 0, 0, 0, 0, byte(i)}) // header
		wire.Write([]byte{0, 0, 16, 0})                     // payload
	}
	raw := &countingConn{data: bytes.NewReader(wire.Bytes())}
	c := &readBufferedConn{Conn: raw, r: bufio.NewReaderSize(raw, connReadBuffer)}
	hdr, payload := make([]byte, 9), make([]byte, 4)
	for i := range 100 {
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatal(err)
		}
		if hdr[8] != byte(i) {
			t.Fatalf("frame %d: header %x", i, hdr)
		}
		if _, err := io.ReadFull(c, payload); err != nil {
			t.Fatal(err)
		}
	}
	if raw.reads > 1 {
		t.Fatalf("%d reads of the connection for 100 frames; want 1", raw.reads)
	}
	if _, err := c.Read(hdr); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

// TestReadBufferedListenerServesHTTP1AndH2C: the API's two protocols work
// through the buffered connections.
func TestReadBufferedListenerServesHTTP1AndH2C(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(append([]byte(r.Proto+" "), body...))
	})}
	go srv.Serve(readBufferedListener{ln})
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		proto func(*http.Protocols)
		want  string
	}{
		{"HTTP/1.1", func(p *http.Protocols) { p.SetHTTP1(true) }, "HTTP/1.1 "},
		{"h2c", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, "HTTP/2.0 "},
	} {
		cp := new(http.Protocols)
		tc.proto(cp)
		hc := &http.Client{Transport: &http.Transport{Protocols: cp}}
		body := bytes.Repeat([]byte("x"), 100<<10) // several buffers' worth
		for range 3 {                              // requests on one connection
			res, err := hc.Post("http://"+ln.Addr().String(), "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || !bytes.Equal(got, append([]byte(tc.want), body...)) {
				t.Fatalf("%s: got %d bytes starting %q, err %v", tc.name, len(got), got[:min(len(got), 20)], err)
			}
		}
		hc.CloseIdleConnections()
	}
}
