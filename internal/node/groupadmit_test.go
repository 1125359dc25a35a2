package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/internal/policy"
)

// A group message is one ciphertext sent as a copy per member, possibly over
// several Send calls: the rate rule counts it once, a retry of the same
// copies too; a new message counts, and so does the same ciphertext sent
// again to a member who had it (a resend under new envelope ids).
func TestRateCountsMessagesNotCopies(t *testing.T) {
	p, err := policy.Compile("rate = 2\nrate_window = duration(\"1h\")")
	if err != nil {
		t.Fatal(err)
	}
	var gg groupGate
	v := policy.Vars{Sender: "ann", SenderRole: "member", Members: []string{"ann", "bob", "cat"}}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	post := func(ct string, copies ...copyOf) error {
		return gg.checkPost(p, v, []byte(ct), copies, "g/ann", now)
	}
	bob1, cat1 := copyOf{"bob", []byte("id-bob-1")}, copyOf{"cat", []byte("id-cat-1")}
	bob2, cat2 := copyOf{"bob", []byte("id-bob-2")}, copyOf{"cat", []byte("id-cat-2")}
	steps := []struct {
		ct     string
		copies []copyOf
	}{
		{"one", []copyOf{bob1}}, {"one", []copyOf{cat1}}, // one post over two calls
		{"one", []copyOf{bob1, cat1}}, // a retry
		{"two", []copyOf{bob2, cat2}},
	}
	for _, st := range steps {
		if err := post(st.ct, st.copies...); err != nil {
			t.Fatalf("copies of %q: %v", st.ct, err)
		}
	}
	err = post("three", bob1)
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "rule rate") {
		t.Fatalf("third message in the window: %v", err)
	}
	if err := post("two", cat2); err != nil {
		t.Fatalf("another copy of a counted message: %v", err)
	}
	if err := post("one", copyOf{"bob", []byte("id-bob-9")}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("the same ciphertext resent to bob under a new id: %v", err)
	}
	now = now.Add(time.Hour)
	if err := post("three", bob1); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if len(gg.recent["g/ann"]) != 1 {
		t.Fatalf("window kept %d posts, want 1", len(gg.recent["g/ann"]))
	}
}

// Posts a node stored for other entry nodes count toward the sender's rate
// here too (once each, however often they are replicated).
func TestRateCountsReplicatedPosts(t *testing.T) {
	p, err := policy.Compile("rate = 2\nrate_window = duration(\"1h\")")
	if err != nil {
		t.Fatal(err)
	}
	var gg groupGate
	v := policy.Vars{Sender: "ann", SenderRole: "member", Members: []string{"ann", "bob"}}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	bob1, bob2 := copyOf{"bob", []byte("id-bob-1")}, copyOf{"bob", []byte("id-bob-2")}
	gg.observe("g/ann", []byte("one"), []copyOf{bob1}, now, time.Hour)
	gg.observe("g/ann", []byte("one"), []copyOf{bob1}, now, time.Hour) // replicated again
	if err := gg.checkPost(p, v, []byte("two"), []copyOf{bob2}, "g/ann", now); err != nil {
		t.Fatalf("second message: %v", err)
	}
	gg.observe("g/ann", []byte("three"), []copyOf{{"bob", []byte("id-bob-3")}}, now, time.Hour)
	if err := gg.checkPost(p, v, []byte("four"), []copyOf{{"bob", []byte("id-bob-4")}}, "g/ann", now); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a fourth message with three in the window: %v", err)
	}
	gg.observe("g/ann", []byte("five"), []copyOf{{"bob", []byte("id-bob-5")}}, now.Add(2*time.Hour), time.Hour)
	if n := len(gg.recent["g/ann"]); n != 1 {
		t.Fatalf("%d posts kept after the window, want 1", n)
	}
}

// A node that stops saves its rate windows and loads them when it starts:
// a restart does not give a sender a fresh window, and a copy of a post
// still in its coverage continues it instead of counting again. Posts too
// old are dropped; no file is no windows; a corrupt file is an error.
func TestRateWindowsSurviveARestart(t *testing.T) {
	p, err := policy.Compile("rate = 2\nrate_window = duration(\"1h\")")
	if err != nil {
		t.Fatal(err)
	}
	v := policy.Vars{Sender: "ann", SenderRole: "member", Members: []string{"ann", "bob", "cat"}}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	bob1, cat1, bob2 := copyOf{"bob", []byte("id-bob-1")}, copyOf{"cat", []byte("id-cat-1")}, copyOf{"bob", []byte("id-bob-2")}
	var before groupGate
	for _, st := range []struct {
		ct string
		c  copyOf
	}{{"one", bob1}, {"two", bob2}} {
		if err := before.checkPost(p, v, []byte(st.ct), []copyOf{st.c}, "g/ann", now); err != nil {
			t.Fatal(err)
		}
	}
	before.recent["old/ann"] = []post{{at: now.Add(-40 * 24 * time.Hour)}}
	path := filepath.Join(t.TempDir(), rateFile)
	if err := before.save(path); err != nil {
		t.Fatal(err)
	}
	var after groupGate
	if err := after.load(path, now.Add(time.Second), maxSavedWindow); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file is gone after loading: %v", err) // a crash before the next save finds it again
	}
	if len(after.recent["old/ann"]) != 0 || len(after.recent["g/ann"]) != 2 {
		t.Fatalf("restored: %+v", after.recent)
	}
	if err := after.checkPost(p, v, []byte("one"), []copyOf{cat1}, "g/ann", now.Add(time.Second)); err != nil {
		t.Fatalf("the rest of a post's copies after the restart: %v", err)
	}
	if err := after.checkPost(p, v, []byte("three"), []copyOf{bob1}, "g/ann", now.Add(time.Second)); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a third message in the window, after the restart: %v", err)
	}
	// A periodic save writes only what changed since the last save.
	if err := after.saveChanged(path); err != nil { // the posts above changed it
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := after.saveChanged(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("unchanged windows saved again: %v", err)
	}
	after.checkPost(p, v, []byte("four"), []copyOf{bob2}, "g/ann", now.Add(2*time.Second)) // refused, but counted as a change
	if err := after.saveChanged(path); err != nil {
		t.Fatal(err)
	}
	var again groupGate
	if err := again.load(path, now.Add(3*time.Second), maxSavedWindow); err != nil || len(again.recent["g/ann"]) != 2 {
		t.Fatalf("after a periodic save: %+v %v", again.recent, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var none groupGate
	if err := none.load(path, now, maxSavedWindow); err != nil || len(none.recent) != 0 {
		t.Fatalf("no file: %v %v", none.recent, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := none.load(path, now, maxSavedWindow); err == nil {
		t.Fatal("a corrupt file loads")
	}
}
