package speaker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Hold is the responders' gate (arp/ndp Options.Gate). It holds answers
// and announcements while what this node believes it owns may be stale,
// which happens in two ways:
//
//   - The process stood still (SIGSTOP, a frozen VM, a long stall): the
//     others may have declared it dead and taken its addresses over
//     meanwhile, and requests that waited in its sockets would otherwise
//     be answered the moment it runs again, before it has heard of the
//     takeover. Hold notices the stall from its own clock (its ticker
//     fell behind by more than Threshold, or a gate check finds the
//     ticker late) and holds until the loop has resynchronized the
//     membership with the live members and elected again (Release).
//   - The node is cut off from most of the speakers (no quorum: it sees
//     fewer than half of the speakers it knows): it keeps answering for
//     what it had (the others may be the ones that died, or its view may
//     be wrong for a moment: a healed member gossips stale deaths), but
//     sends no gratuitous announcements, so that a link coming back does
//     not pull clients away from the nodes that took over. When it sees
//     enough of them again the gate is held, answers included, until
//     the rest of the known members are live again (at most healSettle),
//     the membership is resynchronized and the owners elected again.
//
// A held gate stops ARP/NDP answers only: clients with the node's MAC in
// their caches keep sending it traffic.
type Hold struct {
	// Threshold is the stall that holds the gate. It must stay well
	// under the time the others need to declare a member dead.
	Threshold time.Duration
	// Tick is how often the clock is checked.
	Tick time.Duration
	// OnHold is called (from its own goroutine) when the gate closes
	// after a stall, to get the loop to resynchronize and release it.
	OnHold func()

	start    time.Time
	lastTick atomic.Int64 // since start, ns
	// gen counts the holds; held is the gen that holds the gate, 0
	// when open.
	gen, held atomic.Uint64
	quorum    atomic.Bool
	leaving   atomic.Bool
	once      sync.Once
}

// Defaults for Hold. The tick costs wakeups at rest (at 50 ms the speaker
// used 15% more CPU idle); the threshold leaves it 150 ms of jitter.
const (
	DefaultHoldThreshold = 250 * time.Millisecond
	DefaultHoldTick      = 100 * time.Millisecond
)

func (h *Hold) init() {
	h.once.Do(func() {
		if h.Threshold <= 0 {
			h.Threshold = DefaultHoldThreshold
		}
		if h.Tick <= 0 {
			h.Tick = DefaultHoldTick
		}
		h.start = time.Now()
		h.quorum.Store(true)
	})
}

// Run ticks until ctx ends.
func (h *Hold) Run(ctx context.Context) error {
	h.init()
	t := time.NewTicker(h.Tick)
	defer t.Stop()
	for {
		h.check()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// check holds the gate if the clock jumped since the last tick, and
// records the tick.
func (h *Hold) check() {
	now := int64(time.Since(h.start))
	if last := h.lastTick.Swap(now); last != 0 && time.Duration(now-last) > h.Threshold {
		h.hold()
	}
}

func (h *Hold) hold() {
	g := h.gen.Add(1)
	h.held.Store(g)
	if h.OnHold != nil {
		go h.OnHold()
	}
}

// Gate is the responders' gate: false while held; for announcements also
// false without quorum and once leaving.
func (h *Hold) Gate(announce bool) bool {
	h.init()
	if last := h.lastTick.Load(); last != 0 && time.Since(h.start)-time.Duration(last) > h.Threshold+h.Tick {
		// The ticker has not run for too long: this goroutine runs first
		// after a stall. The ticker's next check holds the gate too.
		h.hold()
		h.lastTick.Store(int64(time.Since(h.start)))
		return false
	}
	if h.held.Load() != 0 {
		return false
	}
	return !announce || h.quorum.Load() && !h.leaving.Load()
}

// Leave closes the gate to announcements for good, answers staying open:
// the speaker is handing its addresses over on its way out.
func (h *Hold) Leave() { h.leaving.Store(true) }

// Held returns the hold to release after resynchronizing, 0 when open.
func (h *Hold) Held() uint64 { return h.held.Load() }

// Release opens the gate if no newer hold came since Held returned g.
func (h *Hold) Release(g uint64) { h.held.CompareAndSwap(g, 0) }

// SetQuorum records whether this node sees enough of the speakers to
// announce. Quorum regained means a partition healed: the gate is held
// (as after a stall) and SetQuorum reports true, so that the caller
// resynchronizes before it answers again on its old view.
func (h *Hold) SetQuorum(ok bool) (regained bool) {
	h.init()
	if ok && !h.quorum.Load() {
		g := h.gen.Add(1)
		h.held.Store(g)
		h.quorum.Store(true)
		return true
	}
	h.quorum.Store(ok)
	return false
}
