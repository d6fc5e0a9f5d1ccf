package speaker

import (
	"net/netip"
	"slices"
	"testing"
	"time"

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

// TestBFDLinkFailed: only a session that was Up and went Down by a
// failure (not the router's AdminDown, not a removal) resets its BGP
// session, once.
func TestBFDLinkFailed(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	st := func(addr netip.Addr, s, remote fsm.State) bfd.SessionState {
		return bfd.SessionState{Address: addr, State: s, RemoteState: remote}
	}
	l := &BFDLink{up: map[netip.Addr]bool{}}
	steps := []struct {
		states []bfd.SessionState
		want   []netip.Addr
	}{
		{[]bfd.SessionState{st(a, fsm.StateDown, fsm.StateDown), st(b, fsm.StateInit, fsm.StateDown)}, nil},
		{[]bfd.SessionState{st(a, fsm.StateUp, fsm.StateUp), st(b, fsm.StateUp, fsm.StateUp), st(c, fsm.StateUp, fsm.StateUp)}, nil},
		// a fails; b's router takes it down on purpose; c is removed.
		{[]bfd.SessionState{st(a, fsm.StateDown, fsm.StateUp), st(b, fsm.StateDown, fsm.StateAdminDown)}, []netip.Addr{a}},
		{[]bfd.SessionState{st(a, fsm.StateDown, fsm.StateDown), st(b, fsm.StateDown, fsm.StateDown)}, nil},
		// c comes back Down: not a fall from Up.
		{[]bfd.SessionState{st(c, fsm.StateDown, fsm.StateDown)}, nil},
	}
	for i, s := range steps {
		if got := l.failed(s.states); !slices.Equal(got, s.want) {
			t.Errorf("step %d: reset %v, want %v", i, got, s.want)
		}
	}
}
