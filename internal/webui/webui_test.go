package webui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/node"
)

// One in-process node for the package, started on first use, stopped and
// deleted when the tests end (TestMain).
var (
	nodeOnce sync.Once
	nodeURL  string
	nodeErr  error
	nodeDir  string
	testN    *node.Node
	handles  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testN != nil {
		testN.Stop()
	}
	if nodeDir != "" {
		os.RemoveAll(nodeDir)
	}
	os.Exit(code)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testNode(t *testing.T) string {
	t.Helper()
	nodeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokenim-webui-")
		if err != nil {
			nodeErr = err
			return
		}
		nodeDir = dir
		home := filepath.Join(dir, "node")
		addrs := node.Addrs{API: freeAddr(), P2P: freeAddr(), RPC: freeAddr()}
		if nodeErr = node.Init(home, node.InitOptions{Addrs: addrs, ChainID: "tokenim-webui", PowDifficulty: 4, PowDifficultySet: true}); nodeErr != nil {
			return
		}
		if testN, nodeErr = node.Start(context.Background(), home, node.StartOptions{Addrs: addrs}); nodeErr == nil {
			nodeURL = "http://" + addrs.API
		}
	})
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	return nodeURL
}

func handle(base string) string { return fmt.Sprintf("%s%d", base, handles.Add(1)) }

// serve starts a UI server for a fresh home and returns it with its URL.
func serve(t *testing.T, home string) (*Server, string) {
	t.Helper()
	return serveVia(t, home, nodeURL)
}

// serveVia is serve with the UI's client talking to node.
func serveVia(t *testing.T, home, node string) (*Server, string) {
	t.Helper()
	s, err := New(Options{Home: home, NodeURL: node, KeystoreWorkFactor: 10})
	if err != nil {
		t.Fatal(err)
	}
	ln, u, err := s.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, u
}

// session exchanges the token for the cookie, as a browser would.
func session(t *testing.T, tokenURL string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	res, err := hc.Get(tokenURL)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("token exchange: %v %v", res, err)
	}
	res.Body.Close()
	base := strings.Split(tokenURL, "/?")[0]
	return hc, base
}

// poster posts forms as the page does (with the CSRF token).
func poster(t *testing.T, s *Server, hc *http.Client, base string) func(path string, form url.Values) (int, string) {
	return func(path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", s.csrf)
		return status(t, hc, req)
	}
}

func status(t *testing.T, hc *http.Client, req *http.Request) (int, string) {
	t.Helper()
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The security rules: a wrong or missing token, a foreign Host header or a
// missing CSRF token get 403; a second server on the same home is refused.
func TestSecurity(t *testing.T) {
	home := t.TempDir()
	s, u := serve(t, home)
	base := strings.Split(u, "/?")[0]
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(target string, host string) int {
		req, _ := http.NewRequest("GET", target, nil)
		if host != "" {
			req.Host = host
		}
		code, _ := status(t, plain, req)
		return code
	}
	if c := get(base+"/", ""); c != 403 {
		t.Fatalf("no cookie: %d", c)
	}
	if c := get(base+"/?token=wrong", ""); c != 403 {
		t.Fatalf("wrong token: %d", c)
	}
	if c := get(u, "evil.example:80"); c != 403 {
		t.Fatalf("foreign Host with the right token: %d", c)
	}
	if c := get(u, ""); c != http.StatusSeeOther {
		t.Fatalf("right token: %d", c)
	}
	hc, _ := session(t, u)
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Host = "rebind.example:" + strings.Split(s.host, ":")[1]
	if code, _ := status(t, hc, req); code != 403 {
		t.Fatalf("DNS-rebinding Host with a valid cookie: %d", code)
	}
	post := func(csrf string) int {
		req, _ := http.NewRequest("POST", base+"/unlock", strings.NewReader(url.Values{"passphrase": {"x"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		code, _ := status(t, hc, req)
		return code
	}
	if c := post(""); c != 403 {
		t.Fatalf("POST without CSRF: %d", c)
	}
	if c := post("wrong"); c != 403 {
		t.Fatalf("POST with a wrong CSRF token: %d", c)
	}
	if c := post(s.csrf); c != 200 { // reaches the handler (which refuses the short passphrase)
		t.Fatalf("POST with the CSRF token: %d", c)
	}
	if _, err := New(Options{Home: home}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second server on the same home: %v", err)
	}
}

// An oversized upload gets a clear message, not a crash or a silent drop.
func TestOversizedUpload(t *testing.T) {
	testNode(t)
	s, u := serve(t, t.TempDir())
	hc, base := session(t, u)
	form := url.Values{"passphrase": {"correct horse"}, "handle": {handle("up")}}
	req, _ := http.NewRequest("POST", base+"/unlock", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", s.csrf)
	if code, body := status(t, hc, req); code != 200 || s.account() == nil {
		t.Fatalf("create account: %d %s", code, body)
	}
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n")
		chunk := make([]byte, 1<<20)
		for i := 0; i < MaxUpload>>20+2; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		fmt.Fprint(pw, "\r\n--b--\r\n")
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", base+"/c/%40nobody/file", pr)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.Header.Set("X-CSRF-Token", s.csrf)
	code, body := status(t, hc, req)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "File too large") {
		t.Fatalf("oversized upload: %d %q", code, body)
	}
}

// flakyNode forwards to the test node while up, and answers 503 (connect:
// unavailable) while down.
type flakyNode struct {
	up    atomic.Bool
	proxy *httputil.ReverseProxy
}

func (f *flakyNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.up.Load() {
		http.Error(w, "node down", http.StatusServiceUnavailable)
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// A message written while the node is unreachable shows queued (not an
// error: it is kept), and turns stored by itself once the node is back;
// the recipient gets it.
func TestQueuedWhileTheNodeIsDown(t *testing.T) {
	target, _ := url.Parse(testNode(t))
	fn := &flakyNode{proxy: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }, FlushInterval: -1}}
	fn.up.Store(true)
	nodeSrv := httptest.NewServer(fn)
	t.Cleanup(nodeSrv.Close) // after the UI's cleanup, which ends its streams through it

	ctx := context.Background()
	bob, err := client.Create(ctx, client.Config{Home: t.TempDir(), NodeURL: nodeURL, Passphrase: []byte("bob's passphrase"), KeystoreWorkFactor: 10}, handle("qbob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	s, u := serveVia(t, t.TempDir(), nodeSrv.URL)
	hc, base := session(t, u)
	post := poster(t, s, hc, base)
	if code, body := post("/unlock", url.Values{"passphrase": {"correct horse"}, "handle": {handle("qann")}}); code != 200 || s.account() == nil {
		t.Fatalf("create account: %d %s", code, body)
	}
	conv := "/c/%40" + bob.Handle()
	if code, body := post(conv+"/send", url.Values{"text": {"while up"}}); code != 200 || !strings.Contains(body, "state-stored") {
		t.Fatalf("send while up: %d %s", code, body)
	}

	fn.up.Store(false)
	code, body := post(conv+"/send", url.Values{"text": {"while down"}})
	if code != 200 || !strings.Contains(body, "state-queued") || strings.Count(body, "while down") != 1 {
		t.Fatalf("send while down: %d %s", code, body)
	}
	fn.up.Store(true)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest("GET", base+conv+"/messages", nil)
		if _, body := status(t, hc, req); !strings.Contains(body, "state-queued") && strings.Count(body, "state-stored") == 2 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the queued message did not go out once the node was back: %s", body)
		}
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Text)
	}
	if !slices.Equal(texts, []string{"while up", "while down"}) {
		t.Fatalf("bob got %q", texts)
	}
}

// The disappearing-messages timer of a 1:1 conversation: set in the web
// client, it is on chain for both parties and applies to what is sent
// next; turned off, the conversation has no policy again. A group shows
// what its policy keeps, and its timer is not set from a conversation.
func TestDisappearing(t *testing.T) {
	testNode(t)
	ctx := context.Background()
	bob, err := client.Create(ctx, client.Config{Home: t.TempDir(), NodeURL: nodeURL, Passphrase: []byte("bob's passphrase"), KeystoreWorkFactor: 10}, handle("dbob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	s, u := serve(t, t.TempDir())
	hc, base := session(t, u)
	post := poster(t, s, hc, base)
	get := func(path string) string {
		req, _ := http.NewRequest("GET", base+path, nil)
		code, body := status(t, hc, req)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return body
	}
	ann := handle("dann")
	if code, body := post("/unlock", url.Values{"passphrase": {"correct horse"}, "handle": {ann}}); code != 200 || s.account() == nil {
		t.Fatalf("create account: %d %s", code, body)
	}
	conv := "/c/%40" + bob.Handle()
	if body := get(conv); !strings.Contains(body, `<option value="0" selected>off</option>`) {
		t.Fatalf("a new conversation's timer is not off: %s", body)
	}
	if code, body := post(conv+"/disappearing", url.Values{"after": {"3600"}}); code != 200 || !strings.Contains(body, `<option value="3600" selected>1 hour</option>`) {
		t.Fatalf("set 1 hour: %d %s", code, body)
	}
	if d, err := bob.DirectDisappearing(ctx, ann); err != nil || d.After != time.Hour || d.PolicyID == "" {
		t.Fatalf("bob's side of the timer: %+v %v", d, err)
	}
	notices := func(want ...string) { // bob's notices from ann since the last call, as the chain shows them
		t.Helper()
		got, err := bob.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, m := range got {
			if m.Notice && m.From == ann && m.State == client.StateReceived {
				texts = append(texts, m.Text)
			}
		}
		if !slices.Equal(texts, want) {
			t.Fatalf("bob's notices: %q, want %q", texts, want)
		}
	}
	notices("set disappearing messages to 1 hour")
	if body := get(conv + "/messages"); !strings.Contains(body, "You set disappearing messages to 1 hour") {
		t.Fatalf("ann's notice: %s", body)
	}
	if code, body := post(conv+"/send", url.Values{"text": {"gone in an hour"}}); code != 200 || !(strings.Contains(body, "deletes in 1h0m0s") || strings.Contains(body, "deletes in 59m")) {
		t.Fatalf("a message under the timer: %d %s", code, body)
	}
	if code, body := post(conv+"/disappearing", url.Values{"after": {"300"}}); code != 200 || !strings.Contains(body, "You set disappearing messages to 5 minutes") {
		t.Fatalf("set 5 minutes: %d %s", code, body)
	}
	if code, body := post(conv+"/disappearing", url.Values{"after": {"0"}}); code != 200 || !strings.Contains(body, `<option value="0" selected>off</option>`) {
		t.Fatalf("turn it off: %d %s", code, body)
	}
	notices("set disappearing messages to 5 minutes (since changed)", "turned disappearing messages off (the conversation has no policy)")
	if d, err := bob.DirectDisappearing(ctx, ann); err != nil || d.After != 0 || d.PolicyID != "" {
		t.Fatalf("bob's side after turning it off: %+v %v", d, err)
	}
	if code, body := post(conv+"/disappearing", url.Values{"after": {"soon"}}); code != 200 || !strings.Contains(body, "Choose a time") {
		t.Fatalf("a bad timer: %d %s", code, body)
	}

	group := handle("dteam")
	if err := bob.CreateGroup(ctx, group, []string{ann}, ""); err != nil { // the default policy: 30 days
		t.Fatal(err)
	}
	if body := get("/c/" + group); !strings.Contains(body, "messages disappear after 30 days") || strings.Contains(body, "disappearing-after") {
		t.Fatalf("a group's timer: %s", body)
	}
	if _, body := post("/c/"+group+"/disappearing", url.Values{"after": {"60"}}); !strings.Contains(body, "its owners choose the policy") {
		t.Fatalf("a group's timer set from the conversation: %s", body)
	}
	if body := get("/g/" + group); strings.Contains(body, "change-policy") || !strings.Contains(body, "✓ you may post") ||
		!strings.Contains(body, "✗ you may not add members") || !strings.Contains(body, "messages disappear after 30 days") || !strings.Contains(body, "can_post") {
		t.Fatalf("a member's view of the group's rules: %s", body)
	}
	if _, body := post("/g/"+group+"/policy", url.Values{"policy": {"ephemeral"}}); !strings.Contains(body, "only an owner") {
		t.Fatalf("a member changes the group's policy: %s", body)
	}
	if err := bob.GroupSetRole(ctx, group, ann, "owner"); err != nil {
		t.Fatal(err)
	}
	if body := get("/g/" + group); !strings.Contains(body, "change-policy") || !strings.Contains(body, "✓ you may add members") {
		t.Fatalf("an owner's view of the group: %s", body)
	}
	if code, body := post("/g/"+group+"/policy", url.Values{"policy": {"ephemeral"}}); code != 200 || !strings.Contains(body, "epoch 1") {
		t.Fatalf("an owner changes the group's policy: %d %s", code, body)
	}
	if body := get("/c/" + group); !strings.Contains(body, "messages disappear after 1 day") || !strings.Contains(body, "You changed the group&#39;s policy") {
		t.Fatalf("the group after the change: %s", body)
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5 minutes", time.Hour: "1 hour", 24 * time.Hour: "1 day", 30 * 24 * time.Hour: "30 days",
		14 * 24 * time.Hour: "2 weeks", 7 * 365 * 24 * time.Hour: "7 years", 90 * time.Second: "90 seconds", 1500 * time.Millisecond: "1.5s",
	} {
		if got := client.Span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}
