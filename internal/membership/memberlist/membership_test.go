package memberlist

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ml "github.com/hashicorp/memberlist"

	"github.com/herald-lb/herald/internal/election"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

// three starts a, b (joining a) and c (joining b) and waits until each
// sees all three.
func three(t *testing.T, mod func(*Options)) (a, b, c *member) {
	t.Helper()
	opts := func(name string, join ...string) Options {
		o := fast(name, join...)
		if mod != nil {
			mod(&o)
		}
		return o
	}
	a = start(t, opts("a"))
	b = start(t, opts("b", a.addr()))
	c = start(t, opts("c", b.addr()))
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" sees a, b, c", hasMembers(m, "a", "b", "c"))
	}
	return a, b, c
}

func TestThreeMembersSeeEachOther(t *testing.T) {
	a, b, c := three(t, nil)
	for _, m := range []*member{a, b, c} {
		if !m.Synced() {
			t.Errorf("%s not synced", m.name)
		}
	}
}

func TestClaimsPropagate(t *testing.T) {
	a, b, c := three(t, nil)
	// Drain notifications from the joins.
	for _, m := range []*member{b, c} {
		select {
		case <-m.Changes():
		default:
		}
	}
	want := at(t1, addrs(1, 5)...)
	start := time.Now()
	a.SetClaims(want)
	for _, m := range []*member{b, c} {
		select {
		case <-m.Changes():
		case <-time.After(eventually):
			t.Fatalf("%s: no change notification", m.name)
		}
		waitFor(t, m.name+" sees a's claims", claimsOf(m, "a", want))
	}
	t.Logf("claims propagated in %v", time.Since(start))
}

func TestClaimEpochsPropagate(t *testing.T) {
	a, b, _ := three(t, nil)
	first := at(t1, addrs(1, 5)...)
	a.SetClaims(first)
	waitFor(t, "b sees a's claims", claimsOf(b, "a", first))

	// The same addresses, one of them taken over again: a change.
	redated := slices.Clone(first)
	redated[2].Epoch = t1 + 5000
	a.SetClaims(redated)
	waitFor(t, "b sees the new epoch", claimsOf(b, "a", redated))

	// Too many to gossip: notice and pull.
	big := at(t1, addrs(100, 5000)...)
	a.SetClaims(big)
	waitFor(t, "b sees a's 5,000 claims", claimsOf(b, "a", big))
	big = at(t1+9000, addrs(100, 5000)...)
	a.SetClaims(big)
	waitFor(t, "b sees a's 5,000 claims re-dated", claimsOf(b, "a", big))
}

// TestKnown: a member that leaves gracefully is no longer known; one
// that dies silently stays known, though not live.
func TestKnown(t *testing.T) {
	a, b, c := three(t, nil)
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" knows a, b, c", hasKnown(m, "a", "b", "c"))
	}
	c.stop(t)
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" drops c", hasMembers(m, "a", "b"))
		if diff := cmp.Diff([]string{"a", "b"}, m.Known()); diff != "" {
			t.Errorf("%s: known after c left (-want +got):\n%s", m.name, diff)
		}
	}
	b.kill(t)
	waitFor(t, "a drops b", hasMembers(a, "a"))
	if diff := cmp.Diff([]string{"a", "b"}, a.Known()); diff != "" {
		t.Errorf("known after b died (-want +got):\n%s", diff)
	}
}

func TestGracefulLeave(t *testing.T) {
	a, b, c := three(t, nil)
	c.SetClaims(at(t1, addrs(100, 3)...))
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees c's claims", claimsOf(m, "c", at(t1, addrs(100, 3)...)))
	}
	start := time.Now()
	c.cancel() // Run leaves, then shuts down
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" drops c", hasMembers(m, "a", "b"))
		if _, ok := m.Claims()["c"]; ok {
			t.Errorf("%s still has c's claims", m.name)
		}
	}
	t.Logf("graceful leave seen by both in %v", time.Since(start))
	c.wait(t)
}

// TestLeaveNotice: a member that shuts down tells the others straight
// away; they drop it before memberlist's own leave would reach them. A
// notice from an earlier process of a member changes nothing.
func TestLeaveNotice(t *testing.T) {
	a, b, c := three(t, nil)
	c.SetClaims(at(t1, addrs(100, 3)...))
	waitFor(t, "a sees c's claims", claimsOf(a, "c", at(t1, addrs(100, 3)...)))
	c.mu.Lock()
	cv := c.table.own.v
	c.mu.Unlock()

	a.handleMsg(encodeLeave("c", version{epoch: cv.epoch - 1}))
	if diff := cmp.Diff([]string{"a", "b", "c"}, a.Members()); diff != "" {
		t.Errorf("members after a stale notice (-want +got):\n%s", diff)
	}
	// What c's shutdown sends, delivered by hand: memberlist still
	// has c alive, a drops it at once and no longer counts it as known.
	a.handleMsg(encodeLeave("c", cv))
	if diff := cmp.Diff([]string{"a", "b"}, a.Members()); diff != "" {
		t.Errorf("members right after c's notice (-want +got):\n%s", diff)
	}
	if slices.Contains(a.Known(), "c") {
		t.Errorf("known after c's notice: %v", a.Known())
	}
	if _, ok := a.Claims()["c"]; ok {
		t.Error("a still has c's claims")
	}

	// Through the real shutdown, b hears it too.
	start := time.Now()
	c.cancel()
	waitFor(t, "b drops c", hasMembers(b, "a", "b"))
	t.Logf("b dropped c %v after its shutdown began", time.Since(start))
	c.wait(t)
}

func TestSilentDeath(t *testing.T) {
	a, b, c := three(t, nil)
	c.SetClaims(at(t1, addrs(100, 3)...))
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees c's claims", claimsOf(m, "c", at(t1, addrs(100, 3)...)))
	}
	start := time.Now()
	c.kill(t)
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" drops c", hasMembers(m, "a", "b"))
		if _, ok := m.Claims()["c"]; ok {
			t.Errorf("%s still has c's claims", m.name)
		}
	}
	took := time.Since(start)
	t.Logf("silent death detected by both in %v", took)
	if took > 3*time.Second {
		t.Errorf("silent death took %v to detect, want about 1 s", took)
	}
}

// TestSilentDeathTiming measures, over several runs with the default
// tuning, the time from a member's silent death (memberlist shut down
// without leaving, as a crash or SIGKILL) until both other members have
// dropped it, and reports the median.
func TestSilentDeathTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing runs skipped in -short mode")
	}
	const runs = 7
	var got []time.Duration
	for i := range runs {
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			a, b, c := three(t, nil)
			start := time.Now()
			c.kill(t)
			waitFor(t, "a drops c", hasMembers(a, "a", "b"))
			waitFor(t, "b drops c", hasMembers(b, "a", "b"))
			got = append(got, time.Since(start))
		})
	}
	slices.Sort(got)
	t.Logf("silent death to NotifyLeave on both survivors, %d runs: median %v, min %v, max %v",
		len(got), got[len(got)/2].Round(time.Millisecond), got[0].Round(time.Millisecond), got[len(got)-1].Round(time.Millisecond))
	if med := got[len(got)/2]; med > 2*time.Second {
		t.Errorf("median detection %v, want about 1 s", med)
	}
}

func TestFreshJoinerLearnsAllClaimsBeforeSynced(t *testing.T) {
	a := start(t, fast("a"))
	b := start(t, fast("b", a.addr()))
	waitFor(t, "a sees b", hasMembers(a, "a", "b"))
	a.SetClaims(at(t1, addrs(0, 50)...))
	b.SetClaims(at(t1, addrs(1000, 10000)...)) // too big for gossip: notice + pull
	waitFor(t, "a has b's claims", claimsOf(a, "b", at(t1, addrs(1000, 10000)...)))

	c := start(t, fast("c", a.addr()))
	waitFor(t, "c synced", c.Synced)
	want := map[string][]election.Claim{"a": at(t1, addrs(0, 50)...), "b": at(t1, addrs(1000, 10000)...)}
	if diff := cmp.Diff(want, c.Claims(), msgOpts); diff != "" {
		t.Errorf("c's claims when synced (-want +got):\n%s", diff)
	}
	// And b learns of c's claims (c joined a, not b).
	c.SetClaims(at(t1, addrs(50, 1)...))
	waitFor(t, "b sees c's claims", claimsOf(b, "c", at(t1, addrs(50, 1)...)))
}

func TestStaleClaimsLose(t *testing.T) {
	a := start(t, fast("a"))
	b := start(t, fast("b", a.addr()))
	waitFor(t, "a sees b", hasMembers(a, "a", "b"))
	b.SetClaims(at(t1, addrs(0, 1)...))
	b.SetClaims(at(t1, addrs(1, 1)...))
	waitFor(t, "a has b's second claims", claimsOf(a, "b", at(t1, addrs(1, 1)...)))

	// b's first version, replayed (a late or relayed gossip packet).
	v := b.table.own.v
	a.handleMsg(encodeFull(wireRecord{name: "b", v: version{v.epoch, v.seq - 1}, claims: at(t1, addrs(0, 1)...)}))
	a.handleMsg(encodeFull(wireRecord{name: "b", v: version{v.epoch - 1, v.seq + 5}, claims: at(t1, addrs(0, 1)...)}))
	if diff := cmp.Diff(at(t1, addrs(1, 1)...), a.Claims()["b"], msgOpts); diff != "" {
		t.Errorf("stale record replaced b's claims (-want +got):\n%s", diff)
	}
	// A newer version wins.
	a.handleMsg(encodeFull(wireRecord{name: "b", v: version{v.epoch, v.seq + 1}, claims: at(t1, addrs(7, 1)...)}))
	if diff := cmp.Diff(at(t1, addrs(7, 1)...), a.Claims()["b"], msgOpts); diff != "" {
		t.Errorf("newer record not taken (-want +got):\n%s", diff)
	}
}

func TestDifferentKeysDoNotFormACluster(t *testing.T) {
	key1 := []byte("0123456789abcdef")
	key2 := []byte("fedcba9876543210")
	withKey := func(o Options, k []byte) Options { o.SecretKey = k; return o }

	a := start(t, withKey(fast("a"), key1))
	b := start(t, withKey(fast("b", a.addr()), key2))
	waitFor(t, "b gives up joining", b.Synced)
	// Same key: joins fine.
	start(t, withKey(fast("c", a.addr()), key1))
	waitFor(t, "a sees c", hasMembers(a, "a", "c"))
	// Unencrypted: refused as well.
	d := start(t, fast("d", a.addr()))
	waitFor(t, "d gives up joining", d.Synced)

	for _, m := range []*member{b, d} {
		if diff := cmp.Diff([]string{m.name}, m.Members()); diff != "" {
			t.Errorf("%s members (-want +got):\n%s", m.name, diff)
		}
	}
	if diff := cmp.Diff([]string{"a", "c"}, a.Members()); diff != "" {
		t.Errorf("a's members (-want +got):\n%s", diff)
	}
}

func TestLargeClaimSetsPropagate(t *testing.T) {
	a, b, c := three(t, nil)
	big := at(t1, addrs(0, 10000)...)
	start := time.Now()
	a.SetClaims(big)
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" has a's 10,000 claims", claimsOf(m, "a", big))
	}
	t.Logf("10,000 claims propagated to both in %v", time.Since(start))

	// One more IP: a small delta by gossip.
	bigger := append(slices.Clone(big), at(t1+1000, addrs(20000, 1)...)...)
	start = time.Now()
	a.SetClaims(bigger)
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" has a's 10,001 claims", claimsOf(m, "a", bigger))
	}
	t.Logf("one more claim propagated in %v", time.Since(start))

	// Half dropped: too big for a delta, notice and pull again.
	start = time.Now()
	a.SetClaims(big[:5000])
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" has a's 5,000 claims", claimsOf(m, "a", big[:5000]))
	}
	t.Logf("5,000 fewer claims propagated in %v", time.Since(start))
}

func TestRestartedMemberReplacesItsClaims(t *testing.T) {
	// c binds its port again: not one the kernel may hand out meanwhile.
	a, b, c := three(t, func(o *Options) { o.BindPort = freeport.Port(t) })
	c.SetClaims(at(t1, addrs(0, 3)...))
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees c's claims", claimsOf(m, "c", at(t1, addrs(0, 3)...)))
	}
	// c crashes and comes back at once on the same address, before the
	// others notice: its old claims must not linger.
	addr := c.addr()
	c.kill(t)
	o := fast("c", a.addr())
	_, port, _ := net.SplitHostPort(addr)
	o.BindPort, _ = strconv.Atoi(port)
	c2 := start(t, o)
	c2.SetClaims(at(t1, addrs(10, 1)...))
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees the new c's claims", claimsOf(m, "c", at(t1, addrs(10, 1)...)))
		waitFor(t, m.name+" sees a, b, c", hasMembers(m, "a", "b", "c"))
	}
}

func TestJoinRetriesUntilASeedAnswers(t *testing.T) {
	// a's seed is b's port, and b is not up yet.
	port := freeport.Port(t)
	a := start(t, fast("a", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))))
	waitFor(t, "a alone after failed joins", a.Synced)
	o := fast("b")
	o.BindPort = port
	b := start(t, o)
	took := waitFor(t, "a joins b", hasMembers(a, "a", "b"))
	waitFor(t, "b sees a", hasMembers(b, "a", "b"))
	t.Logf("a joined b %v after b started", took)

	if err := a.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestBadInputIsDropped(t *testing.T) {
	m, err := New(Options{NodeName: "a", Log: quietLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	m.handleMsg([]byte{1, 99})
	m.handleMsg(nil)
	m.mergeRemote([]byte{1, kindState, 5})
	m.mergeRemote(encodeFull(wireRecord{name: "b"})) // not a state
	m.mergeRemote(encodeState("a", nil))             // from ourselves
	if m.Synced() {
		t.Error("bad or own push/pull state made us synced")
	}
	select {
	case <-m.Changes():
		t.Error("bad input fired Changes")
	default:
	}
}

func TestOwnAddressInSeedsIsSkipped(t *testing.T) {
	port := freeport.Port(t)
	o := fast("a", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	o.BindPort = port
	a := start(t, o)
	waitFor(t, "a synced", a.Synced)
	if diff := cmp.Diff([]string{"a"}, a.Members()); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestSetSeeds(t *testing.T) {
	a := start(t, fast("a"))
	b := start(t, fast("b")) // no seeds: alone
	waitFor(t, "b synced alone", b.Synced)
	if err := b.SetSeeds([]string{"nonsense"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("SetSeeds(nonsense) = %v, want ErrInvalidOptions", err)
	}
	if err := b.SetSeeds([]string{b.addr(), a.addr()}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "b joins a", hasMembers(b, "a", "b"))
	t.Logf("joined %v after SetSeeds", took)
	waitFor(t, "a sees b", hasMembers(a, "a", "b"))
}

// A member that comes back from a partition may never have seen us fail:
// nothing would make it pull our record, and what it holds of it is from
// before the partition. Every member that comes up (or back) gets our
// record at once, and only then.
func TestMemberUpGetsOurRecord(t *testing.T) {
	m, err := New(Options{NodeName: "a", Log: quietLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	replyTo := func() []string {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.Sorted(maps.Keys(m.replyTo))
	}
	m.memberUp(&ml.Node{Name: "a"}) // ourselves
	m.memberUp(&ml.Node{Name: "b"})
	if got := replyTo(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after b came up our record goes to %v, want [b]", got)
	}
	m.mu.Lock()
	clear(m.replyTo)
	m.mu.Unlock()
	m.memberUp(&ml.Node{Name: "b"}) // already live: nothing new
	if got := replyTo(); len(got) != 0 {
		t.Fatalf("b seen live again: our record goes to %v, want nobody", got)
	}
	m.memberDown("b", false)
	m.memberUp(&ml.Node{Name: "b"})
	if got := replyTo(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after b came back our record goes to %v, want [b]", got)
	}
}

// TestNoLinkPropagates: the interface sets a member has no link on reach
// the others through its node meta, with a change notification, and are
// cleared the same way; a graceful leave still reads as one.
func TestNoLinkPropagates(t *testing.T) {
	a, b, c := three(t, nil)
	for _, m := range []*member{b, c} {
		select {
		case <-m.Changes():
		default:
		}
	}
	noLinkOf := func(m *member, name string, want []string) func() bool {
		return func() bool { return slices.Equal(m.NoLink()[name], want) }
	}
	want := []string{"", "eth1 eth2"}
	start := time.Now()
	a.SetNoLink([]string{"eth1 eth2", "", "eth1 eth2", "bad\nset"})
	if got := a.NoLink()["a"]; !slices.Equal(got, want) {
		t.Errorf("a's own NoLink = %q, want %q", got, want)
	}
	for _, m := range []*member{b, c} {
		select {
		case <-m.Changes():
		case <-time.After(eventually):
			t.Fatalf("%s: no change notification", m.name)
		}
		waitFor(t, m.name+" sees a's sets", noLinkOf(m, "a", want))
		if _, ok := m.NoLink()[m.name]; ok {
			t.Errorf("%s reports sets of its own", m.name)
		}
	}
	t.Logf("no-link sets propagated in %v", time.Since(start))

	a.SetNoLink(nil)
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" sees a's sets cleared", noLinkOf(m, "a", nil))
	}

	c.SetNoLink([]string{""})
	waitFor(t, "a sees c's set", noLinkOf(a, "c", []string{""}))
	c.stop(t)
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" drops c", hasMembers(m, "a", "b"))
		if slices.Contains(m.Known(), "c") {
			t.Errorf("%s counts c, which left, as failed", m.name)
		}
		if _, ok := m.NoLink()["c"]; ok {
			t.Errorf("%s still has the sets of c, which left", m.name)
		}
	}
}
