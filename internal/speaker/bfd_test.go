package speaker

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/announce/bfd"
	fsm "github.com/herald-lb/herald/internal/bfd"
	"github.com/herald-lb/herald/internal/model"
)

func TestBFDPeers(t *testing.T) {
	prof := &model.BFDProfile{Name: "fast", ReceiveInterval: 100 * time.Millisecond, TransmitInterval: 200 * time.Millisecond,
		DetectMultiplier: 4, Passive: true, MinimumTTL: 250}
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::3")
	d := BGPDesired{Sessions: []BGPSession{
		{Peer: &model.Peer{Name: "with", Addr: a, BFD: prof}},
		{Peer: &model.Peer{Name: "without", Addr: b}},
		{Peer: &model.Peer{Name: "multihop", Addr: c, BFD: prof, EBGPMultiHop: true}},
		{Peer: &model.Peer{Name: "broken", Addr: netip.MustParseAddr("10.0.0.4"), BFD: prof}},
	}}
	got := bfdPeers(d, map[string]string{"broken": "passwordSecret missing"})
	cfg := fsm.Config{DesiredMinTx: 200 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 4, Passive: true}
	want := []bfd.Peer{
		{Name: "with", Address: a, MinimumTTL: 250, Config: cfg},
		{Name: "multihop", Address: c, MultiHop: true, MinimumTTL: 250, Config: cfg},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("bfdPeers (-want +got):\n%s", diff)
	}
}

// TestBFDLinkChanges: only a session that was Up and went Down by a
// failure (not the router's AdminDown, not a removal) resets its BGP
// session, once; one that comes Up after being seen down starts its BGP
// session over.
func TestBFDLinkChanges(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	st := func(addr netip.Addr, s, remote fsm.State) bfd.SessionState {
		return bfd.SessionState{Address: addr, State: s, RemoteState: remote}
	}
	l := &BFDLink{up: map[netip.Addr]bool{}}
	steps := []struct {
		states     []bfd.SessionState
		failed, up []netip.Addr
	}{
		{[]bfd.SessionState{st(a, fsm.StateDown, fsm.StateDown), st(b, fsm.StateInit, fsm.StateDown)}, nil, nil},
		{[]bfd.SessionState{st(a, fsm.StateUp, fsm.StateUp), st(b, fsm.StateUp, fsm.StateUp), st(c, fsm.StateUp, fsm.StateUp)}, nil, []netip.Addr{a, b}},
		// a fails; b's router takes it down on purpose; c is removed.
		{[]bfd.SessionState{st(a, fsm.StateDown, fsm.StateUp), st(b, fsm.StateDown, fsm.StateAdminDown)}, []netip.Addr{a}, nil},
		{[]bfd.SessionState{st(a, fsm.StateDown, fsm.StateDown), st(b, fsm.StateDown, fsm.StateDown)}, nil, nil},
		// c comes back Down: not a fall from Up; a is up again.
		{[]bfd.SessionState{st(a, fsm.StateUp, fsm.StateUp), st(c, fsm.StateDown, fsm.StateDown)}, nil, []netip.Addr{a}},
	}
	for i, s := range steps {
		failed, up := l.changes(s.states)
		if !slices.Equal(failed, s.failed) || !slices.Equal(up, s.up) {
			t.Errorf("step %d: reset %v and started over %v, want %v and %v", i, failed, up, s.failed, s.up)
		}
	}
}

type fakeBFD struct {
	mu      sync.Mutex
	states  []bfd.SessionState
	changes chan struct{}
	// calls, when set, receives "release ADDR" for every Release.
	calls chan string
}

func (f *fakeBFD) Reconcile([]bfd.Peer) error { return nil }
func (f *fakeBFD) Release(a netip.Addr) {
	if f.calls != nil {
		f.calls <- "release " + a.String()
	}
}
func (f *fakeBFD) States() []bfd.SessionState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.states)
}
func (f *fakeBFD) Changes() <-chan struct{} { return f.changes }
func (f *fakeBFD) set(s ...bfd.SessionState) {
	f.mu.Lock()
	f.states = s
	f.mu.Unlock()
	f.changes <- struct{}{}
}

type fakeResetter struct{ calls chan string }

func (f *fakeResetter) Restart(_ context.Context, a netip.Addr, why string) error {
	f.calls <- "restart " + a.String() + ": " + why
	return nil
}
func (f *fakeResetter) Reconnect(_ context.Context, a netip.Addr) error {
	f.calls <- "reconnect " + a.String()
	return nil
}

// TestBFDLinkRun: BFD up asks for the idle BGP session to start over at
// once and then every second; BFD failing restarts the BGP session and
// then releases the BFD session, and after that nothing is started over
// until BFD is up again.
func TestBFDLinkRun(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	r := &fakeResetter{calls: make(chan string, 16)}
	b := &fakeBFD{changes: make(chan struct{}), calls: r.calls}
	notified := make(chan struct{}, 16)
	l := &BFDLink{BFD: b, BGP: r, Log: logr.Discard(), Notify: func() { notified <- struct{}{} }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = l.Run(ctx) }()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-r.calls:
			if got != want {
				t.Fatalf("call %q, want %q", got, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no call, want %q", want)
		}
	}
	b.set(bfd.SessionState{Address: a, State: fsm.StateDown})
	<-notified
	b.set(bfd.SessionState{Address: a, State: fsm.StateUp, RemoteState: fsm.StateUp})
	next("reconnect 10.0.0.1") // came up
	next("reconnect 10.0.0.1") // the tick, a second later
	b.set(bfd.SessionState{Address: a, State: fsm.StateDown, RemoteState: fsm.StateUp, Diag: fsm.DiagTimeExpired})
	next("restart 10.0.0.1: BFD session down: control detection time expired")
	next("release 10.0.0.1")
	select {
	case got := <-r.calls:
		t.Fatalf("%q while BFD is down", got)
	case <-time.After(1500 * time.Millisecond):
	}
}
