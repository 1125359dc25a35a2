// Package webui is TokenIM's local web client: `tokenim ui` serves it from
// the client process, which holds the keys — the page never receives a
// private key, and the passphrase only once, to unlock.
//
// Security: it listens on loopback; the random token printed at start is
// exchanged for an HttpOnly, SameSite=Strict session cookie; every request
// must carry that cookie and a Host header naming the listener (DNS
// rebinding); every state change must carry the page's CSRF token in the
// X-CSRF-Token header. Anything else gets 403.
//
// Pages are server-rendered html/template with htmx 2.0.11 (embedded,
// static/htmx.min.js, SHA-256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717,
// Zero-Clause BSD, static/htmx.LICENSE); live updates arrive over
// server-sent events from the client's delivery stream.
package webui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/keystore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// MaxUpload caps a file attached in the browser.
const MaxUpload = 256 << 20

// cookiePrefix starts the session cookie's name; the listener's port ends
// it (browsers scope cookies by host, not port: two UIs on one machine must
// not overwrite each other's session).
const cookiePrefix = "tokenim_ui_"

// ErrBusy: another `tokenim ui` serves this home.
var ErrBusy = errors.New("another tokenim ui is running on this home")

// Options configure a Server.
type Options struct {
	Home    string // the TokenIM home (its client/ holds the account)
	NodeURL string
	Logger  *slog.Logger
	// KeystoreWorkFactor is for tests (account creation); 0: the default.
	KeystoreWorkFactor int
}

// Server is one local web client.
type Server struct {
	opts    Options
	log     *slog.Logger
	tmpl    *template.Template
	token   string // printed once; exchanged for the session cookie
	session string // the cookie's value
	csrf    string
	host    string // host:port of the listener, set by Listen
	unlock  func() error

	mu      sync.Mutex
	c       *client.Client
	cancel  context.CancelFunc // stops the delivery stream
	unread  map[string]int
	current string          // the conversation on screen (not counted unread)
	proving map[string]bool // message ids whose proof is being checked
	hub     hub
}

// New prepares a server for opts.Home. It takes the home's UI lock: a
// second server on the same home gets ErrBusy.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(opts.Home, "ui")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := keystore.Lock(dir)
	if errors.Is(err, keystore.ErrLocked) {
		return nil, fmt.Errorf("%w (%s)", ErrBusy, opts.Home)
	}
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		unlock()
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, tmpl: tmpl, unlock: unlock, unread: map[string]int{},
		token: random(), session: random(), csrf: random()}
	return s, nil
}

func random() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Listen opens the listener (addr "": 127.0.0.1 on a free port) and
// returns it with the URL to open (it carries the one-time token).
func (s *Server) Listen(addr string) (net.Listener, string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	s.host = ln.Addr().String()
	return ln, fmt.Sprintf("http://%s/?token=%s", s.host, s.token), nil
}

// Close stops the delivery stream, closes the account and releases the
// home's UI lock.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	var err error
	if s.c != nil {
		err = s.c.Close()
		s.c = nil
	}
	return errors.Join(err, s.unlock())
}

// Handler is the UI's HTTP handler (after Listen, which fixes the Host).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("POST /unlock", s.postUnlock)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /sidebar", s.withClient(s.sidebar))
	mux.HandleFunc("GET /c/{conv}", s.withClient(s.conversation))
	mux.HandleFunc("GET /c/{conv}/messages", s.withClient(s.messages))
	mux.HandleFunc("POST /c/{conv}/send", s.withClient(s.send))
	mux.HandleFunc("POST /c/{conv}/file", s.withClient(s.upload))
	mux.HandleFunc("POST /c/{conv}/disappearing", s.withClient(s.disappearing))
	mux.HandleFunc("GET /file/{id}", s.withClient(s.download))
	mux.HandleFunc("GET /verify/{id}", s.withClient(s.verify))
	mux.HandleFunc("GET /contact/{handle}", s.withClient(s.contact))
	mux.HandleFunc("POST /contact/{handle}/accept", s.withClient(s.acceptKey))
	mux.HandleFunc("POST /chat", s.withClient(s.newChat))
	mux.HandleFunc("POST /groups", s.withClient(s.createGroup))
	mux.HandleFunc("POST /groups/join", s.withClient(s.joinGroup))
	mux.HandleFunc("GET /g/{group}", s.withClient(s.groupPanel))
	mux.HandleFunc("POST /g/{group}/members", s.withClient(s.groupMember))
	mux.HandleFunc("POST /g/{group}/policy", s.withClient(s.groupPolicy))
	mux.HandleFunc("GET /g/{group}/epochs", s.withClient(s.groupEpochs))
	mux.HandleFunc("GET /search", s.withClient(s.search))
	return s.guard(mux)
}

// guard enforces the Host header, the session (or the token exchange) and
// the CSRF token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if !s.hostOK(r.Host) {
			http.Error(w, "forbidden: this UI answers only at "+s.host, http.StatusForbidden)
			return
		}
		if r.URL.Path == "/" && r.Method == http.MethodGet && r.URL.Query().Has("token") {
			if !equal(r.URL.Query().Get("token"), s.token) {
				http.Error(w, "forbidden: wrong token", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: s.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if ck, err := r.Cookie(s.cookieName()); err != nil || !equal(ck.Value, s.session) {
			http.Error(w, "forbidden: open the URL `tokenim ui` printed (it carries the token)", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !equal(r.Header.Get("X-CSRF-Token"), s.csrf) {
			http.Error(w, "forbidden: missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) cookieName() string {
	_, port, _ := net.SplitHostPort(s.host)
	return cookiePrefix + port
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (s *Server) hostOK(host string) bool {
	if s.host == "" {
		return false
	}
	_, port, err := net.SplitHostPort(s.host)
	if err != nil {
		return false
	}
	for _, h := range []string{s.host, "localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port} {
		if host == h {
			return true
		}
	}
	return false
}

// account returns the unlocked client, or nil.
func (s *Server) account() *client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *Server) withClient(h func(http.ResponseWriter, *http.Request, *client.Client)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.account()
		if c == nil {
			w.Header().Set("HX-Redirect", "/")
			http.Error(w, "locked: unlock your account first", http.StatusConflict)
			return
		}
		h(w, r, c)
	}
}
