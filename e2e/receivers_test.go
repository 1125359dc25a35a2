package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenim/tokenim/internal/loadgen"
)

// receiversEnv makes the test binary read members' streams instead of
// running tests: the value is a file holding the node's URL and the
// members' tokens. The process prints "ready" once every stream caught up,
// then the number of envelopes received whenever it changes, and exits
// when its standard input closes.
const receiversEnv = "TOKENIM_E2E_FANOUT_RECEIVERS"

type receiversSpec struct {
	URL    string
	Tokens []string
}

// receivers is a child process reading members' streams.
type receivers struct {
	cmd   *exec.Cmd
	stdin io.Closer
	got   atomic.Int64
	done  chan struct{}
}

// startReceivers starts a child process, at the lowest CPU priority when
// nice(1) exists, that opens a stream for each member and acknowledges as
// the client does; it returns once every stream has caught up.
func startReceivers(b *testing.B, members []loadgen.Account) *receivers {
	spec := receiversSpec{URL: tn.url()}
	for _, m := range members {
		spec.Tokens = append(spec.Tokens, m.Token)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "receivers.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{os.Args[0], "-test.run=^$"}
	if nice, err := exec.LookPath("nice"); err == nil {
		args = append([]string{nice, "-n", "19"}, args...)
	}
	r := &receivers{cmd: exec.Command(args[0], args[1:]...), done: make(chan struct{})}
	r.cmd.Env = append(os.Environ(), receiversEnv+"="+path)
	r.cmd.Stderr = os.Stderr
	stdin, err := r.cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r.stdin = stdin
	ready := make(chan bool, 1)
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
				continue
			}
			if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				r.got.Store(n)
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			r.stop()
			b.Fatal("the receiving process ended before its streams caught up")
		}
	case <-time.After(2 * time.Minute):
		r.stop()
		b.Fatal("the receiving process did not catch up in 2 minutes")
	}
	return r
}

func (r *receivers) stop() {
	r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
	}
	r.cmd.Wait()
}

// runReceivers is the child's side of startReceivers; it never returns.
func runReceivers(path string) {
	raw, err := os.ReadFile(path)
	var spec receiversSpec
	if err == nil {
		err = json.Unmarshal(raw, &spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "receivers:", err)
		os.Exit(2)
	}
	ctx, stop := context.WithCancel(context.Background())
	go func() { // the parent closes stdin, or dies
		io.Copy(io.Discard, os.Stdin)
		stop()
		time.Sleep(time.Second)
		os.Exit(0)
	}()
	var got atomic.Int64
	var ready sync.WaitGroup
	for _, tok := range spec.Tokens {
		ready.Add(1)
		go stream(ctx, deviceAPI(spec.URL), tok, &ready, &got)
	}
	ready.Wait()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	last := int64(-1)
	for ctx.Err() == nil {
		if n := got.Load(); n != last {
			fmt.Fprintln(w, n)
			w.Flush()
			last = n
		}
		time.Sleep(100 * time.Microsecond)
	}
	select {}
}
