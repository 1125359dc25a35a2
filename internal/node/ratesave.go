package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The rate windows are kept in memory; a node saves them every
// rateSaveEvery while they change and when it stops, and loads them when
// it starts again, so a restart does not reset what a sender has posted in
// its window. A crash loses at most the posts of the last rateSaveEvery.

// rateSaveEvery is how often changed rate windows are saved.
const rateSaveEvery = 5 * time.Second

// rateFile is where they are saved, in the node's data directory.
const rateFile = "rate-windows.json"

// maxSavedWindow bounds the age of a restored post; each policy's own
// window prunes the rest when the sender next posts.
const maxSavedWindow = 31 * 24 * time.Hour

// savedPost is a post in its saved form.
type savedPost struct {
	Key    string            `json:"key"`
	AtMs   int64             `json:"at_ms"`
	CT     []byte            `json:"ct"`
	Copies map[uint64]uint64 `json:"copies,omitempty"`
}

// rateSaver saves the rate windows every rateSaveEvery while they change,
// until ctx ends.
func (n *Node) rateSaver(ctx context.Context) {
	path := filepath.Join(n.DataDir(), rateFile)
	for sleepCtx(ctx, rateSaveEvery) {
		if err := n.gate.saveChanged(path); err != nil {
			n.log.Warn("rate windows not saved", "err", err)
		}
	}
}

// saveChanged saves the windows to path if they changed since the last
// save.
func (gg *groupGate) saveChanged(path string) error {
	gg.mu.Lock()
	changed := gg.gen != gg.saved
	gg.mu.Unlock()
	if !changed {
		return nil
	}
	return gg.save(path)
}

// save writes the windows to path (atomically).
func (gg *groupGate) save(path string) error {
	gg.saveMu.Lock()
	defer gg.saveMu.Unlock()
	gg.mu.Lock()
	gen := gg.gen
	var out []savedPost
	for key, posts := range gg.recent {
		for _, q := range posts {
			out = append(out, savedPost{Key: key, AtMs: q.at.UnixMilli(), CT: q.ct[:], Copies: q.copies})
		}
	}
	gg.mu.Unlock()
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save rate windows: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save rate windows: %w", err)
	}
	gg.mu.Lock()
	gg.saved = gen
	gg.mu.Unlock()
	return nil
}

// load reads the windows saved at path (none: nothing to load); posts
// older than maxAge are dropped. The file stays: a crash before the next
// save finds it again.
func (gg *groupGate) load(path string, now time.Time, maxAge time.Duration) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load rate windows: %w", err)
	}
	var in []savedPost
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("load rate windows from %s: %w", filepath.Base(path), err)
	}
	gg.mu.Lock()
	defer gg.mu.Unlock()
	if gg.recent == nil {
		gg.recent = map[string][]post{}
	}
	for _, sp := range in {
		at := time.UnixMilli(sp.AtMs)
		if now.Sub(at) > maxAge || len(sp.CT) != len(post{}.ct) {
			continue
		}
		q := post{at: at, copies: sp.Copies}
		copy(q.ct[:], sp.CT)
		if now.Sub(at) >= postCoverage {
			q.copies = nil
		} else if q.copies == nil {
			q.copies = map[uint64]uint64{}
		}
		gg.recent[sp.Key] = append(gg.recent[sp.Key], q)
	}
	gg.saved = gg.gen
	return nil
}
