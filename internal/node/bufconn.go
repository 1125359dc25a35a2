package node

import (
	"bufio"
	"net"
)

// connReadBuffer is the read buffer of each API connection.
const connReadBuffer = 16 << 10

// readBufferedListener hands out connections whose reads go through a
// buffer. The HTTP/2 server reads its frames straight from the connection,
// two reads per frame (header, then payload); its peers send many small
// frames — window updates for every 4 KB a receiving stream consumes, Acks,
// pings — so a member of a busy group cost its node two system calls per
// frame. Through the buffer, one read takes whatever frames have arrived.
type readBufferedListener struct{ net.Listener }

func (l readBufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readBufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer)}, nil
}

// readBufferedConn is a connection read through a buffer. Only one
// goroutine reads a server connection at a time (HTTP/1's reader, or
// HTTP/2's frame reader), as bufio.Reader requires.
type readBufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readBufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite keeps the half-close the HTTP/1 server uses on TCP
// connections before closing them.
func (c *readBufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
