package speaker

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestHold(t *testing.T) {
	var kicks atomic.Int32
	h := &Hold{Threshold: 100 * time.Millisecond, Tick: 10 * time.Millisecond, OnHold: func() { kicks.Add(1) }}
	h.init()
	h.check()
	if !h.Gate(false) || !h.Gate(true) {
		t.Fatal("gate closed on a fresh Hold")
	}

	// Without quorum: answers, no announcements.
	h.SetQuorum(false)
	if !h.Gate(false) || h.Gate(true) {
		t.Fatal("without quorum: want answers only")
	}
	if !h.SetQuorum(true) || h.Held() == 0 || h.Gate(false) {
		t.Fatal("quorum regained: want the gate held")
	}
	h.Release(h.Held())
	if h.SetQuorum(true) || !h.Gate(true) {
		t.Fatal("quorum kept: want the gate open")
	}

	// The ticker fell behind (the process stood still): the ticker's own
	// check holds the gate.
	h.lastTick.Store(int64(time.Since(h.start) - time.Second))
	h.check()
	g := h.Held()
	if g == 0 || h.Gate(false) || h.Gate(true) {
		t.Fatal("not held after a stall seen by the ticker")
	}
	// A hold released with an older generation stays.
	h.Release(g - 1)
	if h.Held() != g {
		t.Fatal("released by a stale generation")
	}
	h.Release(g)
	if !h.Gate(false) {
		t.Fatal("still held after Release")
	}

	// A gate check that runs before the ticker after a stall holds too.
	h.lastTick.Store(int64(time.Since(h.start) - time.Second))
	if h.Gate(false) {
		t.Fatal("answered right after a stall")
	}
	if h.Held() == 0 {
		t.Fatal("not held after a stall seen by the gate")
	}
	deadline := time.Now().Add(time.Second)
	for kicks.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if kicks.Load() != 2 {
		t.Errorf("OnHold called %d times, want 2", kicks.Load())
	}
}

// TestHoldLeave: a speaker on its way out keeps answering but announces
// nothing more.
func TestHoldLeave(t *testing.T) {
	h := &Hold{}
	h.init()
	h.check()
	h.Leave()
	if !h.Gate(false) || h.Gate(true) {
		t.Fatalf("leaving: answers %v, announcements %v; want answers only", h.Gate(false), h.Gate(true))
	}
}
