package webui

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/policy"
)

const chromium = "/usr/bin/chromium"

// browser starts headless Chromium (Debian's) for a test, or skips: under
// CI a missing browser is a failure, not a skip.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: .ci/run installs it (apt-get install chromium)", chromium)
		}
		t.Skipf("browser tests need %s: apt-get install chromium", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return actx
}

// tab opens a tab: from the allocator, in a new browser; from a tab, in
// that tab's browser (cookies are per UI server's host:port anyway).
func tab(t *testing.T, actx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the tab (and the browser) on ctx itself
		t.Fatalf("start the browser: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (page %s shows %q)", what, err, loc, body)
	}
}

// waitText waits until the element matching sel contains text.
func waitText(t *testing.T, ctx context.Context, sel, text string) {
	t.Helper()
	waitTextFor(t, ctx, sel, text, 20*time.Second)
}

func waitTextFor(t *testing.T, ctx context.Context, sel, text string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if strings.Contains(got, text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q in %s; it shows %q", text, sel, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("TOKENIM_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

// createAccount opens the UI and creates an account through the page.
func createAccount(t *testing.T, ctx context.Context, tokenURL, h string) {
	t.Helper()
	run(t, ctx, "create "+h,
		chromedp.Navigate(tokenURL),
		chromedp.WaitVisible(chromedp.CSS("#passphrase")),
		chromedp.SendKeys(chromedp.CSS("#handle"), h),
		chromedp.SendKeys(chromedp.CSS("#passphrase"), "correct horse battery"),
	)
	shot(t, ctx, "unlock")
	run(t, ctx, "submit "+h, chromedp.Click(chromedp.CSS("#unlock")), chromedp.WaitVisible(chromedp.CSS("#sidebar")))
}

// Two people in two browsers: accounts made in the page, a message each way
// arriving live, a three-member group, a file up and down, the
// chain-verified key badge and the key-change warning.
func TestBrowserChat(t *testing.T) {
	actx := browser(t)
	testNode(t)
	aliceSrv, aliceURL := serve(t, t.TempDir())
	bobSrv, bobURL := serve(t, t.TempDir())
	alice, bob := handle("alice"), handle("bob")
	actx1 := tab(t, actx)
	createAccount(t, actx1, aliceURL, alice) // starts the browser
	bctx := tab(t, actx1)                    // a second tab in it
	createAccount(t, bctx, bobURL, bob)
	// Swapped-in content is live at once: with htmx's default settle delay a
	// click in its first 20 ms went nowhere (a details panel stayed "loading…").
	if d, err := chromedp.Run(actx1, chromedp.Evaluate[int]("htmx.config.defaultSettleDelay")); err != nil || d != 0 {
		t.Fatalf("htmx settle delay %d ms (%v), want 0", d, err)
	}

	// A third member, through the SDK.
	carol, err := client.Create(context.Background(), client.Config{Home: t.TempDir(), NodeURL: nodeURL, Passphrase: []byte("pw"), KeystoreWorkFactor: 10}, handle("carol"))
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()

	// Alice opens a chat with bob and sends; bob sees it arrive live.
	run(t, actx1, "new chat",
		chromedp.Click(chromedp.CSS(`details.new summary`)),
		chromedp.SendKeys(chromedp.CSS("#new-handle"), "@"+bob),
		chromedp.Click(chromedp.CSS("#new-chat")),
		chromedp.WaitVisible(chromedp.CSS("#text")))
	waitText(t, actx1, "#key-badge", "verified by the chain")
	run(t, actx1, "type", chromedp.SendKeys(chromedp.CSS("#text"), "hello bob\n"))
	waitText(t, actx1, "#messages", "hello bob")
	waitText(t, bctx, "#sidebar", alice) // the sidebar refreshed from the event stream
	run(t, bctx, "open", chromedp.Click(chromedp.CSS(`a[data-conv="@`+alice+`"]`)), chromedp.WaitVisible(chromedp.CSS("#text")))
	waitText(t, bctx, "#messages", "hello bob")
	run(t, bctx, "reply", chromedp.SendKeys(chromedp.CSS("#text"), "hi alice\n"))
	waitText(t, actx1, "#messages", "hi alice")                   // live, no reload
	waitTextFor(t, actx1, "#messages", "⛓ anchored", time.Minute) // proofs checked in the background
	shot(t, actx1, "conversation")

	// A file, uploaded in alice's page, downloaded byte for byte by bob.
	data := make([]byte, 300_000)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "report.bin")
	os.WriteFile(src, data, 0o600)
	run(t, actx1, "attach", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{src}))
	waitText(t, actx1, "#messages", "report.bin")
	shot(t, actx1, "file")
	waitText(t, bctx, "#messages", "report.bin")
	attr, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(`#messages a.file`), "href"))
	if err != nil || !attr.Exists {
		t.Fatalf("file link: %v", err)
	}
	href := attr.Value
	hc, base := session(t, bobURL)
	res, err := hc.Get(base + href)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("download: %d, %d bytes, equal %v", res.StatusCode, len(got), bytes.Equal(got, data))
	}

	// A group of three made in the page; carol (SDK) and bob get its message.
	group := handle("team")
	run(t, actx1, "new group",
		chromedp.Navigate(strings.Split(aliceURL, "/?")[0]+"/"),
		chromedp.WaitVisible(chromedp.CSS("#sidebar")),
		chromedp.Click(chromedp.CSS(`details.new:nth-of-type(2) summary`)),
		chromedp.SendKeys(chromedp.CSS("#group-name"), group),
		chromedp.SendKeys(chromedp.CSS("#group-members"), "@"+bob+", @"+carol.Handle()),
		chromedp.SetValue(chromedp.CSS("#group-policy"), "ephemeral"),
		chromedp.Click(chromedp.CSS("#create-group")),
		chromedp.WaitVisible(chromedp.CSS("#manage")))
	run(t, actx1, "members", chromedp.Click(chromedp.CSS("#manage")))
	waitText(t, actx1, "#panel", carol.Handle())
	waitText(t, actx1, "#members-proof", "proven by the chain at block")
	shot(t, actx1, "group")
	run(t, actx1, "group message", chromedp.SendKeys(chromedp.CSS("#text"), "hi team\n"))
	waitText(t, actx1, "#messages", "hi team")
	waitText(t, actx1, "#messages", "deletes in") // the ephemeral policy's countdown
	// Its proof shows who was in the group just before the anchor block.
	waitTextFor(t, actx1, "#messages", "⛓ anchored", time.Minute)
	run(t, actx1, "group proof", chromedp.Click(chromedp.CSS("#messages a.anchored")), chromedp.WaitVisible(chromedp.CSS("#proof-members")))
	waitText(t, actx1, "#proof-members", "@"+alice+" owner, you owner")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms, err := carol.Sync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) > 0 {
			if h, _ := carol.History(func(m *client.Message) bool { return m.Group == group && m.Text == "hi team" }); len(h) == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("carol did not get the group message")
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitText(t, bctx, "#sidebar", group)

	// Bob leaves the group from its panel; the chain no longer lists him.
	run(t, bctx, "bob's group", chromedp.Navigate(strings.Split(bobURL, "/?")[0]+"/?c="+group), chromedp.WaitVisible(chromedp.CSS("#manage")))
	run(t, bctx, "bob's panel", chromedp.Click(chromedp.CSS("#manage")), chromedp.WaitVisible(chromedp.CSS("details.leave summary")))
	run(t, bctx, "leave", chromedp.Click(chromedp.CSS("details.leave summary")), chromedp.WaitVisible(chromedp.CSS("#leave-group")),
		chromedp.Click(chromedp.CSS("#leave-group")), chromedp.WaitNotPresent(chromedp.CSS("#manage")))
	if g, err := carol.Group(context.Background(), group); err != nil || g.Epoch != 1 || len(g.Members) != 2 {
		t.Fatalf("after bob left: %v %v", g, err)
	}
	// Alice's panel shows the earlier member list, with bob, proven.
	run(t, actx1, "alice's group", chromedp.Navigate(strings.Split(aliceURL, "/?")[0]+"/?c="+group), chromedp.WaitVisible(chromedp.CSS("#manage")))
	run(t, actx1, "alice's panel", chromedp.Click(chromedp.CSS("#manage")), chromedp.WaitVisible(chromedp.CSS("details.history summary")),
		chromedp.Click(chromedp.CSS("details.history summary")))
	waitText(t, actx1, "#epochs", "epoch 0, closed in block")
	waitText(t, actx1, "#epochs", "@"+bob)
	shot(t, actx1, "group-history")

	// Bob joins an open group by its name; the one he left refuses him.
	club := handle("club")
	openSrc, _ := policy.TemplateSource("open")
	if _, err := carol.DeployPolicy(context.Background(), handle("open"), openSrc); err != nil && !errors.Is(err, client.ErrPolicyExists) {
		t.Fatal(err)
	}
	if err := carol.CreateGroup(context.Background(), club, nil, policy.ID(openSrc)); err != nil {
		t.Fatal(err)
	}
	join := func(name string) {
		run(t, bctx, "join "+name, chromedp.Navigate(strings.Split(bobURL, "/?")[0]+"/"), chromedp.WaitVisible(chromedp.CSS("#sidebar")),
			chromedp.Click(chromedp.CSS(`details.new:nth-of-type(3) summary`)), chromedp.SendKeys(chromedp.CSS("#join-name"), name),
			chromedp.Click(chromedp.CSS("#join-group")))
	}
	join(group)
	waitText(t, bctx, "#new-error", "can_join")
	join(club)
	run(t, bctx, "joined", chromedp.WaitVisible(chromedp.CSS("#manage")))
	if g, err := carol.Group(context.Background(), club); err != nil || len(g.Members) != 2 {
		t.Fatalf("after bob joined: %v %v", g, err)
	}

	// A contact whose key is not the one bob pinned: a loud warning.
	bc := bobSrv.account()
	if err := bc.PinKey(carol.Handle(), bytes.Repeat([]byte{5}, 33)); err != nil {
		t.Fatal(err)
	}
	run(t, bctx, "carol", chromedp.Navigate(strings.Split(bobURL, "/?")[0]+"/?c=@"+carol.Handle()), chromedp.WaitVisible(chromedp.CSS("#key-warning")))
	waitText(t, bctx, "#key-warning", "key changed")
	run(t, bctx, "contact panel", chromedp.Click(chromedp.CSS("#key-warning")), chromedp.WaitVisible(chromedp.CSS("#key-changed")))
	shot(t, bctx, "key-warning")
	_ = aliceSrv
}

// A burst of messages while a conversation is open: every one shows, live.
// Each arrival is an event; a refresh of the conversation must not be lost
// behind the sidebar's refresh of an earlier event.
func TestBrowserBurst(t *testing.T) {
	actx := browser(t)
	testNode(t)
	_, aliceURL := serve(t, t.TempDir())
	alice := handle("alice")
	ctx := tab(t, actx)
	createAccount(t, ctx, aliceURL, alice)
	dave, err := client.Create(context.Background(), client.Config{Home: t.TempDir(), NodeURL: nodeURL, Passphrase: []byte("pw"), KeystoreWorkFactor: 10}, handle("dave"))
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	if _, err := dave.Send(context.Background(), alice, "first"); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#sidebar", dave.Handle())
	run(t, ctx, "open", chromedp.Click(chromedp.CSS(`a[data-conv="@`+dave.Handle()+`"]`)), chromedp.WaitVisible(chromedp.CSS("#text")))
	waitText(t, ctx, "#messages", "first")
	const n = 12
	for i := range n {
		if _, err := dave.Send(context.Background(), alice, fmt.Sprintf("burst %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitText(t, ctx, "#messages", fmt.Sprintf("burst %02d", n-1))
}
