package speaker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/election"
)

// fakeMembership is a Membership the test sets: live members and the
// other members' claims; this node's claims are what the loop set.
type fakeMembership struct {
	mu     sync.Mutex
	self   string
	live   []string
	known  []string
	others map[string][]election.Claim
	mine   []election.Claim
	// noLink: the other members' interface sets without link; myNoLink
	// what the loop set.
	noLink   map[string][]string
	myNoLink []string
}

func (m *fakeMembership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.live)
}

func (m *fakeMembership) Known() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.known)
}

func (m *fakeMembership) Claims() map[string][]election.Claim {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.others)
	if out == nil {
		out = map[string][]election.Claim{}
	}
	out[m.self] = slices.Clone(m.mine)
	return out
}

func (m *fakeMembership) SetClaims(c []election.Claim) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mine = slices.Clone(c)
}

func (m *fakeMembership) NoLink() map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.noLink)
	if out == nil {
		out = map[string][]string{}
	}
	if len(m.myNoLink) > 0 {
		out[m.self] = slices.Clone(m.myNoLink)
	}
	return out
}

func (m *fakeMembership) SetNoLink(sets []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.myNoLink = slices.Clone(sets)
}

func (m *fakeMembership) setNoLink(node string, sets ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noLink == nil {
		m.noLink = map[string][]string{}
	}
	m.noLink[node] = sets
}

func (m *fakeMembership) Synced() bool { return true }

func (m *fakeMembership) setLive(live ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live = live
}

// planFixture is n1's loop in a three-node membership with 30 Services,
// after a first pass and once its takeover plans are made.
func planFixture(t *testing.T, extra ...client.Object) (*L2Loop, *recordingResponder, *fakeMembership) {
	t.Helper()
	old := planQuiet
	planQuiet = 10 * time.Millisecond
	t.Cleanup(func() { planQuiet = old })
	objs := append([]client.Object{readyNode("n2"), readyNode("n3")}, extra...)
	for i := range 30 {
		objs = append(objs, lbService(fmt.Sprintf("s%02d", i), fmt.Sprintf("172.31.255.%d", 200+i)))
	}
	loop, _, arp, _, _ := loopFixture(t, objs...)
	m := &fakeMembership{self: "n1", live: []string{"n1", "n2", "n3"}, known: []string{"n1", "n2", "n3"}}
	loop.Membership = m
	if _, err := loop.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(arp.calls[len(arp.calls)-1]["eth0"]); got != 10 {
		t.Fatalf("n1 announces %d of 30 addresses, want 10", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		loop.planMu.Lock()
		p := loop.plans
		loop.planMu.Unlock()
		if p != nil {
			if len(p.plans) != 2 {
				t.Fatalf("plans for %v, want n2 and n3", slices.Sorted(maps.Keys(p.plans)))
			}
			return loop, arp, m
		}
		if time.Now().After(deadline) {
			t.Fatal("no takeover plans made")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// When a member goes, the plan gives the responders at once what the pass
// then computes.
func TestTakeOverMatchesThePass(t *testing.T) {
	loop, arp, m := planFixture(t)
	before := len(arp.calls[len(arp.calls)-1]["eth0"])
	m.setLive("n1", "n3")
	if !loop.TakeOver() {
		t.Fatal("TakeOver applied no plan")
	}
	planned := arp.calls[len(arp.calls)-1]
	if len(planned["eth0"]) <= before {
		t.Fatalf("the plan announces %d addresses, no more than the %d before", len(planned["eth0"]), before)
	}
	if _, err := loop.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(planned, arp.calls[len(arp.calls)-1], addrCmp); d != "" {
		t.Errorf("the pass after the takeover differs from the plan (-plan +pass):\n%s", d)
	}
	if loop.TakeOver() {
		t.Error("a plan was applied twice")
	}
}

// A plan is void after any input change, and applies only to exactly the
// member it was made for going.
func TestTakeOverOnlyWhenValid(t *testing.T) {
	t.Run("api event", func(t *testing.T) {
		loop, arp, m := planFixture(t)
		calls := len(arp.calls)
		loop.invalidatePlans()
		m.setLive("n1", "n3")
		if loop.TakeOver() || len(arp.calls) != calls {
			t.Error("a plan was applied after an input change")
		}
	})
	t.Run("two members gone", func(t *testing.T) {
		loop, arp, m := planFixture(t)
		calls := len(arp.calls)
		m.setLive("n1")
		if loop.TakeOver() || len(arp.calls) != calls {
			t.Error("a plan was applied with two members gone")
		}
	})
	t.Run("no member gone", func(t *testing.T) {
		loop, _, _ := planFixture(t)
		if loop.TakeOver() {
			t.Error("a plan was applied with every member live")
		}
	})
	t.Run("link down", func(t *testing.T) {
		loop, arp, m := planFixture(t)
		calls := len(arp.calls)
		loop.Interfaces.(*staticInterfaces).down = map[string]bool{"eth0": true}
		m.setLive("n1", "n3")
		if loop.TakeOver() || len(arp.calls) != calls {
			t.Error("a plan was applied with the link down")
		}
	})
	t.Run("no quorum", func(t *testing.T) {
		// n4 and n5 are Ready Nodes whose speakers were seen, then
		// failed: two of five live is no quorum.
		loop, arp, m := planFixture(t, readyNode("n4"), readyNode("n5"))
		calls := len(arp.calls)
		m.mu.Lock()
		m.known = []string{"n1", "n2", "n3", "n4", "n5"}
		m.mu.Unlock()
		m.setLive("n1", "n3")
		if loop.TakeOver() || len(arp.calls) != calls {
			t.Error("a plan was applied without quorum")
		}
	})
}

// TestCutOffNodeTakesNothingOver: a node whose link is down answers for
// nothing (it could not be heard) and tells the others so, but keeps its
// claims with their epochs; it takes nothing over when it sees a peer
// fail (that may be its own isolation). Once its link is back it waits
// for the member it lost (up to healSettle); then what nobody else took
// is answered again under the same claims, and it takes its share of
// the failed peer's addresses.
func TestCutOffNodeTakesNothingOver(t *testing.T) {
	loop, arp, m := planFixture(t)
	ctx := context.Background()
	claimsBefore := m.Claims()["n1"]
	nics := loop.Interfaces.(*staticInterfaces)
	nics.down = map[string]bool{"eth0": true}
	m.setLive("n1", "n3") // n2 seen to fail while n1's link is down
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(arp.calls[len(arp.calls)-1]["eth0"]); got != 0 {
		t.Errorf("with its link down n1 answers for %d addresses, want none", got)
	}
	if diff := cmp.Diff(claimsBefore, m.Claims()["n1"], addrCmp); diff != "" {
		t.Errorf("with its link down n1's claims changed (-before +after):\n%s", diff)
	}
	if got := m.NoLink()["n1"]; !slices.Equal(got, []string{""}) {
		t.Errorf("n1 tells the others it has no link on %q, want the default set", got)
	}

	nics.down = nil
	loop.invalidatePlans() // the interface change
	calls := len(arp.calls)
	if again, err := loop.Reconcile(ctx); err != nil || again <= 0 {
		t.Fatalf("with its link back and n2 not seen again, Reconcile = %v, %v; want a wait", again, err)
	}
	if len(arp.calls) != calls {
		t.Errorf("n1 answers again before it heard from the member it lost: %v", arp.calls[len(arp.calls)-1])
	}
	loop.linkBackUntil.Store(time.Now().Add(-time.Second).UnixNano()) // healSettle over
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.NoLink()["n1"]; got != nil {
		t.Errorf("with its link back n1 still tells the others it has none on %q", got)
	}
	answered := arp.calls[len(arp.calls)-1]["eth0"]
	if len(answered) <= 10 {
		t.Errorf("with its link back n1 answers for %d addresses, want its own and some of n2's", len(answered))
	}
	after := m.Claims()["n1"]
	for _, c := range claimsBefore {
		if !slices.Contains(answered, c.IP) || !slices.Contains(after, c) {
			t.Errorf("with its link back n1 does not answer %s under its old claim", c.IP)
		}
	}
}

// TestCutOffNodeYieldsToNewerClaims: the addresses another node took over
// while this node's link was down stay there when the link comes back
// (no failback): the old claims this node kept lose to the newer ones.
func TestCutOffNodeYieldsToNewerClaims(t *testing.T) {
	loop, arp, m := planFixture(t)
	ctx := context.Background()
	mine := m.Claims()["n1"]
	nics := loop.Interfaces.(*staticInterfaces)
	nics.down = map[string]bool{"eth0": true}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	// n3 takes n1's addresses over meanwhile.
	var taken []election.Claim
	for _, c := range mine {
		taken = append(taken, election.Claim{IP: c.IP, Epoch: c.Epoch + 1})
	}
	m.mu.Lock()
	m.others = map[string][]election.Claim{"n3": taken}
	m.mu.Unlock()
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}

	nics.down = nil
	loop.invalidatePlans()
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	answered := arp.calls[len(arp.calls)-1]["eth0"]
	claims := m.Claims()["n1"]
	for _, c := range mine {
		if slices.Contains(answered, c.IP) || slices.ContainsFunc(claims, func(x election.Claim) bool { return x.IP == c.IP }) {
			t.Errorf("with its link back n1 took %s back from n3", c.IP)
		}
	}
}

// TestPeerWithoutLinkHandsOver: a live member that reports no link on
// the interfaces it answers on is no candidate: the others take its
// addresses over, and keep them when its link is back (no failback).
func TestPeerWithoutLinkHandsOver(t *testing.T) {
	loop, arp, m := planFixture(t)
	ctx := context.Background()
	before := arp.calls[len(arp.calls)-1]["eth0"]
	m.setNoLink("n2", "")
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	during := arp.calls[len(arp.calls)-1]["eth0"]
	if len(during) <= len(before) {
		t.Fatalf("with n2 without link n1 answers for %d addresses, want more than its %d", len(during), len(before))
	}
	for _, ip := range before {
		if !slices.Contains(during, ip) {
			t.Errorf("n1 dropped %s, which it held", ip)
		}
	}

	m.setNoLink("n2")
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if after := arp.calls[len(arp.calls)-1]["eth0"]; !slices.Equal(after, during) {
		t.Errorf("with n2's link back n1 answers for %d addresses, want the same %d (no failback)", len(after), len(during))
	}
}

// TestCutOffNodeWithoutQuorumStaysIdle: answering again on a link that
// came back is a takeover: a node that sees too few members does not,
// even once it stopped waiting for them; its claims stay.
func TestCutOffNodeWithoutQuorumStaysIdle(t *testing.T) {
	loop, arp, m := planFixture(t)
	ctx := context.Background()
	mine := m.Claims()["n1"]
	nics := loop.Interfaces.(*staticInterfaces)
	nics.down = map[string]bool{"eth0": true}
	m.setLive("n1") // both others seen to fail while cut off
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	nics.down = nil
	loop.invalidatePlans()
	loop.linkBackUntil.Store(time.Now().Add(-time.Second).UnixNano()) // healSettle over
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(arp.calls[len(arp.calls)-1]["eth0"]); got != 0 {
		t.Errorf("without quorum n1 answers for %d addresses again, want none", got)
	}
	if diff := cmp.Diff(mine, m.Claims()["n1"], addrCmp); diff != "" {
		t.Errorf("without quorum n1's claims changed (-before +after):\n%s", diff)
	}
}
