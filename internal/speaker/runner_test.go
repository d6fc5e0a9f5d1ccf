package speaker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// scriptedPass counts passes, can block each one until released, and
// returns what results says for the n-th pass.
type scriptedPass struct {
	n       atomic.Int32
	running atomic.Int32
	overlap atomic.Bool
	started chan int32
	release chan struct{} // nil: passes do not block
	results func(n int32) (time.Duration, error)
}

func (p *scriptedPass) Reconcile(ctx context.Context) (time.Duration, error) {
	if p.running.Add(1) > 1 {
		p.overlap.Store(true)
	}
	defer p.running.Add(-1)
	n := p.n.Add(1)
	p.started <- n
	if p.release != nil {
		select {
		case <-p.release:
		case <-ctx.Done():
		}
	}
	if p.results != nil {
		return p.results(n)
	}
	return 0, nil
}

func waitPass(t *testing.T, p *scriptedPass, want int32) {
	t.Helper()
	select {
	case n := <-p.started:
		if n != want {
			t.Fatalf("pass %d started, want pass %d", n, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("pass %d never started", want)
	}
}

func noPass(t *testing.T, p *scriptedPass, d time.Duration) {
	t.Helper()
	select {
	case n := <-p.started:
		t.Fatalf("unexpected pass %d", n)
	case <-time.After(d):
	}
}

func startRunner(t *testing.T, p Pass, synced func(context.Context) bool) *runner {
	t.Helper()
	r := newRunner(p, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, synced) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func TestRunnerWaitsForSyncThenPasses(t *testing.T) {
	p := &scriptedPass{started: make(chan int32, 10)}
	ready := make(chan struct{})
	r := startRunner(t, p, func(ctx context.Context) bool {
		select {
		case <-ready:
			return true
		case <-ctx.Done():
			return false
		}
	})
	r.kick() // before Run's queue exists: dropped, the first pass covers it
	noPass(t, p, 100*time.Millisecond)
	close(ready)
	waitPass(t, p, 1)
	noPass(t, p, 100*time.Millisecond)
}

func TestRunnerCoalescesEventsDuringAPass(t *testing.T) {
	p := &scriptedPass{started: make(chan int32, 10), release: make(chan struct{})}
	r := startRunner(t, p, func(context.Context) bool { return true })
	waitPass(t, p, 1)
	for range 5 {
		r.kick()
	}
	p.release <- struct{}{}
	waitPass(t, p, 2) // the five kicks make one pass
	p.release <- struct{}{}
	noPass(t, p, 200*time.Millisecond)
	if p.overlap.Load() {
		t.Error("two passes ran at once")
	}
}

func TestRunnerRetriesAndRequeues(t *testing.T) {
	p := &scriptedPass{started: make(chan int32, 10), results: func(n int32) (time.Duration, error) {
		switch n {
		case 1:
			return 0, errors.New("API server away")
		case 2:
			return 50 * time.Millisecond, nil
		}
		return 0, nil
	}}
	startRunner(t, p, func(context.Context) bool { return true })
	waitPass(t, p, 1)
	waitPass(t, p, 2) // the failed pass is retried
	waitPass(t, p, 3) // the pass that asked to run again after 50ms
	noPass(t, p, 200*time.Millisecond)
}

func TestRunnerKickAfterRunsOnceAtTheEarliestTime(t *testing.T) {
	p := &scriptedPass{started: make(chan int32, 10)}
	r := startRunner(t, p, func(context.Context) bool { return true })
	waitPass(t, p, 1)
	start := time.Now()
	r.kickAfter(time.Hour)
	r.kickAfter(30 * time.Millisecond)
	waitPass(t, p, 2)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("a pass asked for after 30ms ran after %s", d)
	}
	noPass(t, p, 200*time.Millisecond)
}
