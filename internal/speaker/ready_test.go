package speaker

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/internal/announce/bgp"
	"github.com/herald-lb/herald/internal/model"
)

func TestReady(t *testing.T) {
	done := ReadyInput{L2Passed: true, BGPPassed: true, Elapsed: time.Second, BGPWait: 30 * time.Second}
	for _, c := range []struct {
		name  string
		mod   func(*ReadyInput)
		ready bool
		why   string
	}{
		{"all done", func(*ReadyInput) {}, true, "ready"},
		{"no layer-2 pass yet", func(in *ReadyInput) { in.L2Passed = false }, false, "waiting for the first layer-2 pass"},
		{"no BGP pass yet", func(in *ReadyInput) { in.BGPPassed = false }, false, "waiting for the first BGP pass"},
		{"sessions not up", func(in *ReadyInput) { in.BGPWaiting = []string{"r2", "r1"} }, false, "waiting for BGP sessions with r1, r2 (at most 30s after the start)"},
		{"sessions not up after the wait", func(in *ReadyInput) { in.BGPWaiting = []string{"r1"}; in.Elapsed = 31 * time.Second }, true, "ready"},
		{"nothing yet", func(in *ReadyInput) { *in = ReadyInput{BGPWait: time.Second} }, false,
			"waiting for the first layer-2 pass (API caches, memberlist); the first BGP pass"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := done
			c.mod(&in)
			ok, why := Ready(in)
			if ok != c.ready || !strings.HasPrefix(why, c.why) {
				t.Errorf("Ready = %v, %q; want %v, %q...", ok, why, c.ready, c.why)
			}
		})
	}
}

// TestReadinessLatches: once ready, a session going down later does not
// make the speaker unready.
func TestReadinessLatches(t *testing.T) {
	waiting := []string{"r1"}
	r := &Readiness{Start: time.Now(), BGPWait: time.Minute, L2Passed: func() bool { return true },
		BGPSessions: func() (bool, []string) { return true, waiting }}
	if ok, _ := r.Check(); ok {
		t.Fatal("ready with a session down")
	}
	waiting = nil
	if ok, _ := r.Check(); !ok {
		t.Fatal("not ready with everything done")
	}
	waiting = []string{"r1"}
	if ok, why := r.Check(); !ok {
		t.Errorf("not ready again after a session went down: %s", why)
	}
}

// TestBGPStatusWaiting: the sessions the loop wants that are not
// established, less the peers it could not configure; nothing known
// before the first Set.
func TestBGPStatusWaiting(t *testing.T) {
	spk := &fakeBGP{changes: make(chan struct{}, 1)}
	w := NewBGPStatusWriter(nil, nil, "ns", "n1", spk, nil, logr.Discard())
	if known, _ := w.Waiting(); known {
		t.Fatal("known before the first Set")
	}
	peer := func(name string) BGPSession {
		return BGPSession{Peer: &model.Peer{Name: name, Addr: netip.MustParseAddr("172.31.255.1")}}
	}
	w.Set(BGPDesired{Sessions: []BGPSession{peer("up"), peer("down"), peer("bad"), peer("new")}}, map[string]string{"bad": "no password"})
	spk.setSessions(bgp.SessionState{Peer: "up", State: bgp.StateEstablished}, bgp.SessionState{Peer: "down", State: bgp.StateActive})
	known, waiting := w.Waiting()
	if !known || len(waiting) != 2 || !strings.Contains(strings.Join(waiting, ","), "down") || !strings.Contains(strings.Join(waiting, ","), "new") {
		t.Errorf("Waiting = %v, %v; want true, [down new]", known, waiting)
	}
	w.Set(BGPDesired{}, nil)
	if known, waiting := w.Waiting(); !known || len(waiting) != 0 {
		t.Errorf("no peers: Waiting = %v, %v; want true, none", known, waiting)
	}
}

// TestL2Passed: a pass that goes through says so; one waiting for the
// membership does not.
func TestL2Passed(t *testing.T) {
	loop, _, _, _, _ := loopFixture(t, lbService("a", "172.31.255.200"))
	loop.Membership = unsyncedMembership{&fakeMembership{self: "n1", live: []string{"n1"}}}
	if _, err := loop.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if loop.Passed() {
		t.Fatal("passed before the membership was synced")
	}
	loop.Membership = nil
	if _, err := loop.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !loop.Passed() {
		t.Fatal("not passed after a pass")
	}
}

type unsyncedMembership struct{ *fakeMembership }

func (unsyncedMembership) Synced() bool { return false }
