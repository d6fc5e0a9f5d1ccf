package memberlist

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/election"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	testPullDelay = 100 * time.Millisecond
	testPullRetry = time.Second
)

func newTestTable() *table { return newTable("self", 1000, testPullDelay, testPullRetry) }

func rec(name string, epoch, seq uint64, claims ...election.Claim) wireRecord {
	return wireRecord{name: name, v: version{epoch, seq}, claims: canonical(claims)}
}

// c returns claims on n addresses from 10.0.0.0 + from, taken over at t1.
func c(from, n int) []election.Claim { return at(t1, addrs(from, n)...) }

func effectOpts() cmp.Option { return cmp.AllowUnexported(effect{}) }

func wantClaims(t *testing.T, tb *table, want map[string][]election.Claim) {
	t.Helper()
	if diff := cmp.Diff(want, tb.claims(), msgOpts); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
}

func wantEffect(t *testing.T, what string, got, want effect) {
	t.Helper()
	if diff := cmp.Diff(want, got, effectOpts()); diff != "" {
		t.Errorf("%s: effect mismatch (-want +got):\n%s", what, diff)
	}
}

func TestTableStaleVersionsLose(t *testing.T) {
	tb := newTestTable()
	tb.join("b", t0)
	x, y := c(1, 1), c(2, 1)

	wantEffect(t, "first record", tb.merge(rec("b", 5, 3, x...), t0), effect{changed: true, rebroadcast: true})
	wantEffect(t, "older seq", tb.merge(rec("b", 5, 2, y...), t0), effect{})
	wantEffect(t, "older epoch, higher seq", tb.merge(rec("b", 4, 99, y...), t0), effect{})
	wantEffect(t, "same version again", tb.merge(rec("b", 5, 3, x...), t0), effect{})
	wantEffect(t, "stale delta", tb.applyDelta(wireDelta{name: "b", base: 1, v: version{5, 2}, added: y}, t0), effect{})
	wantClaims(t, tb, map[string][]election.Claim{"b": x})

	wantEffect(t, "newer seq", tb.merge(rec("b", 5, 4, y...), t0), effect{changed: true, rebroadcast: true})
	wantEffect(t, "newer epoch (restart), same claims", tb.merge(rec("b", 6, 0, y...), t0), effect{rebroadcast: true})
	wantClaims(t, tb, map[string][]election.Claim{"b": y})
}

func TestTableDelta(t *testing.T) {
	tb := newTestTable()
	tb.join("b", t0)
	tb.merge(rec("b", 5, 1, c(1, 3)...), t0)

	// On top of the base: applied.
	e := tb.applyDelta(wireDelta{name: "b", base: 1, v: version{5, 2}, added: c(10, 2), removed: addrs(2, 1)}, t0)
	wantEffect(t, "delta on its base", e, effect{changed: true, rebroadcast: true})
	wantClaims(t, tb, map[string][]election.Claim{"b": canonical(append(c(1, 1), append(c(3, 1), c(10, 2)...)...))})

	// A gap (3 lost, 4 arrives): not applied, b is behind.
	e = tb.applyDelta(wireDelta{name: "b", base: 3, v: version{5, 4}, added: c(20, 1)}, t0)
	wantEffect(t, "delta after a gap", e, effect{rebroadcast: true, behind: true})
	if got, _ := tb.pullsDue(t0.Add(testPullDelay - 1)); len(got) != 0 {
		t.Errorf("pull before the delay: %v", got)
	}
	// The missing delta arrives in time: applied, but still behind 4.
	tb.applyDelta(wireDelta{name: "b", base: 2, v: version{5, 3}, added: c(30, 1)}, t0)
	got, next := tb.pullsDue(t0.Add(testPullDelay))
	if diff := cmp.Diff([]string{"b"}, got); diff != "" {
		t.Errorf("pulls due (-want +got):\n%s", diff)
	}
	if want := t0.Add(testPullDelay + testPullRetry); !next.Equal(want) {
		t.Errorf("next pull at %v, want %v", next, want)
	}
	if got, _ := tb.pullsDue(t0.Add(testPullDelay + testPullRetry/2)); len(got) != 0 {
		t.Errorf("pull again before the retry interval: %v", got)
	}
	if got, _ := tb.pullsDue(t0.Add(testPullDelay + testPullRetry)); !slices.Equal(got, []string{"b"}) {
		t.Errorf("no retry after the retry interval: %v", got)
	}
	// The reply brings version 4: caught up, nothing due.
	wantEffect(t, "reply", tb.merge(rec("b", 5, 4, c(40, 1)...), t0), effect{changed: true})
	if got, next := tb.pullsDue(t0.Add(time.Hour)); len(got) != 0 || !next.IsZero() {
		t.Errorf("pulls after catching up: %v, next %v", got, next)
	}
}

func TestTableNotice(t *testing.T) {
	tb := newTestTable()
	tb.join("b", t0)
	tb.merge(rec("b", 5, 1, c(1, 1)...), t0)
	wantEffect(t, "old notice", tb.notice("b", version{5, 1}, t0), effect{})
	wantEffect(t, "new notice", tb.notice("b", version{5, 2}, t0), effect{rebroadcast: true, behind: true})
	wantEffect(t, "same notice relayed back", tb.notice("b", version{5, 2}, t0), effect{})
	// Nothing but a pull brings it: due at once.
	if got, _ := tb.pullsDue(t0); !slices.Equal(got, []string{"b"}) {
		t.Errorf("pulls due: %v, want [b]", got)
	}
	if v := tb.heardOf("b"); v != (version{5, 2}) {
		t.Errorf("heardOf(b) = %v, want 5.2", v)
	}
}

func TestTableLeaveAndRejoin(t *testing.T) {
	tb := newTestTable()
	tb.join("b", t0)
	tb.merge(rec("b", 5, 3, c(1, 2)...), t0)

	wantEffect(t, "leave", tb.leave("b", false, t0), effect{changed: true})
	if diff := cmp.Diff([]string{"self"}, tb.members()); diff != "" {
		t.Errorf("members after leave (-want +got):\n%s", diff)
	}
	wantClaims(t, tb, map[string][]election.Claim{})
	wantEffect(t, "leave again", tb.leave("b", false, t0), effect{})

	// Gossip about a member that is not live is not kept; a newer
	// version only raises the floor.
	tb.merge(rec("b", 5, 4, c(9, 1)...), t0)
	tb.applyDelta(wireDelta{name: "b", base: 4, v: version{5, 5}, added: c(8, 1)}, t0)
	wantClaims(t, tb, map[string][]election.Claim{})

	// Back (a false suspicion refuted): its claims are unknown, a pull
	// is due, stale gossip below the floor is refused, its own answer at
	// the floor version is taken.
	wantEffect(t, "rejoin", tb.join("b", t0), effect{changed: true, behind: true})
	wantEffect(t, "rejoin again", tb.join("b", t0), effect{})
	if got, _ := tb.pullsDue(t0.Add(testPullDelay)); !slices.Equal(got, []string{"b"}) {
		t.Errorf("pulls due after rejoin: %v, want [b]", got)
	}
	tb.merge(rec("b", 5, 3, c(1, 2)...), t0)
	wantClaims(t, tb, map[string][]election.Claim{})
	// b answers with 5.4, but 5.5 was heard of: progress, still behind,
	// so the next pull is due at once rather than after the retry delay.
	wantEffect(t, "answer at the floor", tb.merge(rec("b", 5, 4, c(9, 1)...), t0), effect{changed: true, behind: true})
	wantClaims(t, tb, map[string][]election.Claim{"b": c(9, 1)})
	if got, _ := tb.pullsDue(t0); !slices.Equal(got, []string{"b"}) {
		t.Errorf("pulls due below a heard version: %v, want [b]", got)
	}
	tb.merge(rec("b", 5, 5, c(8, 2)...), t0)
	wantClaims(t, tb, map[string][]election.Claim{"b": c(8, 2)})
	if got, _ := tb.pullsDue(t0.Add(2 * time.Hour)); len(got) != 0 {
		t.Errorf("pulls due after catching up: %v", got)
	}
}

// TestTableLeaveNotice: a member's own word that it leaves takes it out
// (and out of Known) at once, unless it comes from an earlier process.
func TestTableLeaveNotice(t *testing.T) {
	tb := newTestTable()
	tb.join("b", t0)
	tb.merge(rec("b", 5, 3, c(1, 2)...), t0)
	wantEffect(t, "notice from an earlier process", tb.leaveNotice("b", version{4, 9}, t0), effect{})
	wantEffect(t, "notice from ourselves", tb.leaveNotice("self", version{9, 9}, t0), effect{})
	wantEffect(t, "notice from a stranger", tb.leaveNotice("x", version{9, 9}, t0), effect{})
	if diff := cmp.Diff([]string{"b", "self"}, tb.members()); diff != "" {
		t.Errorf("members after ignored notices (-want +got):\n%s", diff)
	}
	wantEffect(t, "notice", tb.leaveNotice("b", version{5, 3}, t0), effect{changed: true})
	if diff := cmp.Diff([]string{"self"}, tb.members()); diff != "" {
		t.Errorf("members after b left (-want +got):\n%s", diff)
	}
	if got := tb.known(); !slices.Equal(got, []string{"self"}) {
		t.Errorf("known after b left gracefully: %v, want [self]", got)
	}
	wantClaims(t, tb, map[string][]election.Claim{})
	wantEffect(t, "memberlist's leave after the notice", tb.leave("b", true, t0), effect{})
}

func TestTableForgetsDepartedMembers(t *testing.T) {
	tb := newTestTable()
	tb.join("b", t0)
	tb.leave("b", false, t0)
	tb.pullsDue(t0.Add(forgetAfter))
	if _, ok := tb.recs["b"]; !ok {
		t.Fatal("b forgotten too early")
	}
	tb.pullsDue(t0.Add(forgetAfter + time.Second))
	if _, ok := tb.recs["b"]; ok {
		t.Error("b not forgotten")
	}
}

func TestTableOwnRecord(t *testing.T) {
	tb := newTestTable()
	if _, ok := tb.setOwn(nil); ok {
		t.Error("setOwn(nil) on an empty set reported a change")
	}
	d, ok := tb.setOwn(c(1, 3))
	want := wireDelta{name: "self", base: 0, v: version{1000, 1}, added: c(1, 3)}
	if diff := cmp.Diff(want, d, msgOpts); !ok || diff != "" {
		t.Errorf("setOwn: %v, delta mismatch (-want +got):\n%s", ok, diff)
	}
	d, _ = tb.setOwn(canonical(append(c(2, 2), c(7, 1)...)))
	want = wireDelta{name: "self", base: 1, v: version{1000, 2}, added: c(7, 1), removed: addrs(1, 1)}
	if diff := cmp.Diff(want, d, msgOpts); diff != "" {
		t.Errorf("second setOwn: delta mismatch (-want +got):\n%s", diff)
	}
	if _, ok := tb.setOwn(canonical(append(c(2, 2), c(7, 1)...))); ok {
		t.Error("setOwn with the same set reported a change")
	}

	// Our own messages relayed back, or older ones: nothing.
	wantEffect(t, "own echo", tb.merge(rec("self", 1000, 2), t0), effect{})
	wantEffect(t, "own older", tb.notice("self", version{999, 50}, t0), effect{})
	// A newer version of our name (an earlier process whose clock was
	// ahead): jump past it, keep the claims.
	wantEffect(t, "own newer", tb.applyDelta(wireDelta{name: "self", base: 0, v: version{2000, 1}}, t0), effect{reannounce: true})
	if tb.own.v != (version{2001, 0}) {
		t.Errorf("own version %v, want 2001.0", tb.own.v)
	}
	wantClaims(t, tb, map[string][]election.Claim{"self": canonical(append(c(2, 2), c(7, 1)...))})
}

func TestTableIgnoresEmptyNames(t *testing.T) {
	tb := newTestTable()
	for _, e := range []effect{
		tb.merge(rec("", 1, 1, c(1, 1)...), t0),
		tb.applyDelta(wireDelta{v: version{1, 1}}, t0),
		tb.notice("", version{1, 1}, t0),
		tb.join("", t0),
		tb.join("self", t0),
		tb.leave("self", false, t0),
		tb.leave("unknown", true, t0),
	} {
		wantEffect(t, "empty name", e, effect{})
	}
	if len(tb.recs) != 0 {
		t.Errorf("records created: %v", tb.recs)
	}
}

func TestTableLocalState(t *testing.T) {
	a := newTestTable()
	a.setOwn(c(1, 2))
	a.join("c", t0)
	a.merge(rec("c", 7, 1, c(5, 1)...), t0)
	a.join("d", t0) // live, claims unknown: not sent
	a.join("e", t0)
	a.merge(rec("e", 8, 1, c(6, 1)...), t0)
	a.leave("e", false, t0) // gone: not sent

	msg, err := decode(a.localState())
	if err != nil {
		t.Fatal(err)
	}
	want := message{kind: kindState, name: "self", records: []wireRecord{
		{name: "self", v: version{1000, 1}, claims: c(1, 2)},
		{name: "c", v: version{7, 1}, claims: c(5, 1)},
	}}
	if diff := cmp.Diff(want, msg, msgOpts); diff != "" {
		t.Errorf("local state mismatch (-want +got):\n%s", diff)
	}
	if &a.localState()[0] != &a.localState()[0] {
		t.Error("local state not cached")
	}

	// A fresh member merging it learns every claim (the members are
	// live: memberlist merges nodes before the delegate state).
	b := newTable("b", 2000, testPullDelay, testPullRetry)
	b.join("self", t0)
	b.join("c", t0)
	e := b.mergeState(msg.records, t0)
	wantEffect(t, "merge state", e, effect{changed: true})
	wantClaims(t, b, map[string][]election.Claim{"self": c(1, 2), "c": c(5, 1)})
}

func TestTableEpochChange(t *testing.T) {
	a := newTestTable()
	b := newTable("b", 2000, testPullDelay, testPullRetry)
	b.join("self", t0)
	d, _ := a.setOwn(c(1, 3))
	b.merge(wireRecord{name: "self", v: d.v, claims: c(1, 3)}, t0)

	// ip2 lost and taken over again: same addresses, a newer epoch.
	next := canonical([]election.Claim{{IP: addrs(1, 1)[0], Epoch: t1}, {IP: addrs(2, 1)[0], Epoch: t1 + 5000}, {IP: addrs(3, 1)[0], Epoch: t1}})
	d, ok := a.setOwn(next)
	want := wireDelta{name: "self", base: 1, v: version{1000, 2}, added: next[1:2]}
	if diff := cmp.Diff(want, d, msgOpts); !ok || diff != "" {
		t.Errorf("setOwn with a new epoch: %v, delta mismatch (-want +got):\n%s", ok, diff)
	}
	wantEffect(t, "re-dating delta", b.applyDelta(d, t0), effect{changed: true, rebroadcast: true})
	wantClaims(t, b, map[string][]election.Claim{"self": next})
}

func TestTableKnown(t *testing.T) {
	tb := newTestTable()
	if diff := cmp.Diff([]string{"self"}, tb.known()); diff != "" {
		t.Errorf("known at first (-want +got):\n%s", diff)
	}
	for _, n := range []string{"b", "c", "d"} {
		tb.join(n, t0)
	}
	wantEffect(t, "b left", tb.leave("b", true, t0), effect{changed: true})
	wantEffect(t, "c failed", tb.leave("c", false, t0), effect{changed: true})
	if diff := cmp.Diff([]string{"d", "self"}, tb.members()); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c", "d", "self"}, tb.known()); diff != "" {
		t.Errorf("known (-want +got):\n%s", diff)
	}
	// Forgetting c's version floor does not forget c.
	tb.pullsDue(t0.Add(2 * forgetAfter))
	if diff := cmp.Diff([]string{"c", "d", "self"}, tb.known()); diff != "" {
		t.Errorf("known after forgetAfter (-want +got):\n%s", diff)
	}
	// Back: live and known again; c then leaves gracefully.
	tb.join("b", t0)
	tb.join("c", t0)
	tb.leave("c", true, t0)
	if diff := cmp.Diff([]string{"b", "d", "self"}, tb.known()); diff != "" {
		t.Errorf("known after b came back and c left (-want +got):\n%s", diff)
	}
	// We left: the others stay known.
	tb.leaveAll(t0)
	if diff := cmp.Diff([]string{"b", "d", "self"}, tb.known()); diff != "" {
		t.Errorf("known after leaveAll (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"self"}, tb.members()); diff != "" {
		t.Errorf("members after leaveAll (-want +got):\n%s", diff)
	}
}

func TestDiffPatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() []election.Claim {
		var out []election.Claim
		for _, a := range addrs(0, 40) {
			if r.IntN(2) == 0 {
				out = append(out, election.Claim{IP: a, Epoch: t1 + r.Int64N(3)})
			}
		}
		return out
	}
	ipsOf := func(claims []election.Claim) []netip.Addr {
		var out []netip.Addr
		for _, x := range claims {
			out = append(out, x.IP)
		}
		return out
	}
	for range 1000 {
		from, to := pick(), pick()
		added, removed := diff(from, to)
		if got := patch(from, added, removed); !slices.Equal(got, to) {
			t.Fatalf("patch(%v, diff) = %v, want %v", from, got, to)
		}
		for _, x := range added {
			if slices.Contains(from, x) || !slices.Contains(to, x) {
				t.Fatalf("added %v: already in %v or not in %v", x, from, to)
			}
		}
		for _, a := range removed {
			if !slices.Contains(ipsOf(from), a) || slices.Contains(ipsOf(to), a) {
				t.Fatalf("removed %v: not in %v or still in %v", a, from, to)
			}
		}
		// A delta that removes and adds an address (remove first) works
		// as well.
		for _, x := range added {
			if slices.Contains(ipsOf(from), x.IP) {
				removed = append(removed, x.IP)
			}
		}
		slices.SortFunc(removed, netip.Addr.Compare)
		if got := patch(from, added, removed); !slices.Equal(got, to) {
			t.Fatalf("patch(%v, added, removed+re-dated) = %v, want %v", from, got, to)
		}
	}
}

// BenchmarkPushPull10k is one periodic push/pull at 10,000 claims in a
// 3-member cluster, in steady state: the sender's state (its own record
// and the two others', 3,334 claims each) is encoded, then decoded and
// merged by a member that already holds all of it. Each member pays this
// about twice per push/pull interval.
func BenchmarkPushPull10k(b *testing.B) {
	recs := []wireRecord{
		{name: "a", v: version{epoch: 1, seq: 1}, claims: c(0, 3334)},
		{name: "b", v: version{epoch: 1, seq: 1}, claims: c(3334, 3333)},
		{name: "x", v: version{epoch: 1, seq: 1}, claims: c(6667, 3333)},
	}
	recv := newTable("x", 1, testPullDelay, testPullRetry)
	recv.join("a", time.UnixMilli(t1))
	recv.join("b", time.UnixMilli(t1))
	recv.mergeState(recs[:2], time.UnixMilli(t1))
	b.ReportAllocs()
	for b.Loop() {
		buf := encodeState("a", recs)
		msg, err := decode(buf)
		if err != nil {
			b.Fatal(err)
		}
		recv.mergeState(msg.records, time.UnixMilli(t1))
	}
}
