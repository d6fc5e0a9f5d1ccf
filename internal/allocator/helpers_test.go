package allocator

import (
	"errors"
	"hash/maphash"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/model"
)

// labelSel is a test model.Selector: every listed label must be present
// with that value.
type labelSel map[string]string

func (s labelSel) Matches(labels map[string]string) bool {
	for k, v := range s {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (s labelSel) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		parts = append(parts, k+"="+s[k])
	}
	return strings.Join(parts, ",")
}

var _ model.Selector = labelSel(nil)

// rng parses "a-b", a prefix "p/n", or a single address.
func rng(t testing.TB, s string) model.Range {
	t.Helper()
	if first, last, ok := strings.Cut(s, "-"); ok {
		return model.Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
	}
	if strings.Contains(s, "/") {
		p := netip.MustParsePrefix(s).Masked()
		return model.Range{First: p.Addr(), Last: lastOf(p)}
	}
	a := netip.MustParseAddr(s)
	return model.Range{First: a, Last: a}
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bits := p.Bits() - i*8
		switch {
		case bits >= 8:
		case bits <= 0:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> bits
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// pl builds an autoAssign pool.
func pl(t testing.TB, name string, ranges ...string) *model.Pool {
	t.Helper()
	p := &model.Pool{Name: name, AutoAssign: true}
	for _, r := range ranges {
		p.Ranges = append(p.Ranges, rng(t, r))
	}
	return p
}

func manual(p *model.Pool) *model.Pool { p.AutoAssign = false; return p }
func buggy(p *model.Pool) *model.Pool  { p.AvoidBuggyIPs = true; return p }
func scoped(p *model.Pool, al model.ServiceAllocation) *model.Pool {
	p.Allocation = &al
	return p
}

func conf(pools ...*model.Pool) *model.Config {
	c := &model.Config{Pools: map[string]*model.Pool{}}
	for _, p := range pools {
		c.Pools[p.Name] = p
		c.PoolOrder = append(c.PoolOrder, p.Name)
	}
	sort.Strings(c.PoolOrder)
	return c
}

func key(s string) model.ServiceKey {
	ns, name, _ := strings.Cut(s, "/")
	return model.ServiceKey{Namespace: ns, Name: name}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func asg(pool string, ips ...string) model.Assignment {
	return model.Assignment{Pool: pool, IPs: addrs(ips...)}
}

func tcp(ports ...uint16) []model.Port {
	var out []model.Port
	for _, p := range ports {
		out = append(out, model.Port{Protocol: model.TCP, Port: p})
	}
	return out
}

// collideAll makes newAlloc's allocators hash every ServiceKey alike,
// so that every Service but one goes through serviceTable.collided.
var collideAll bool

func newAlloc(t testing.TB, cfg *model.Config) *Allocator {
	t.Helper()
	a := New()
	if collideAll {
		a.services.hash = func(maphash.Seed, model.ServiceKey) uint64 { return 1 }
	}
	if d := a.SetConfig(cfg); len(d) != 0 {
		t.Fatalf("SetConfig on an empty allocator displaced %v", d)
	}
	return a
}

// step is one operation of a scenario and what it must give.
type step struct {
	name string
	// Exactly one of assign, release, setConfig (with config, which may
	// be nil).
	assign    *model.Request
	release   string
	setConfig bool
	config    *model.Config

	want          model.Assignment // assign
	wantErr       error            // assign: sentinel, nil for success
	wantMsg       string           // assign: exact message, when set
	wantReleased  bool             // release
	wantDisplaced []Displaced      // config
}

func rq(r model.Request) *model.Request { return &r }

// runSteps plays steps on a, checking results and invariants after each.
func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch {
		case s.assign != nil:
			got, err := a.Assign(*s.assign)
			if s.wantErr != nil {
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d %s: Assign(%s) error = %v, want %v", i, s.name, s.assign.Service, err, s.wantErr)
				}
				if s.wantMsg != "" && err.Error() != s.wantMsg {
					t.Fatalf("step %d %s: Assign(%s) error message:\n got %q\nwant %q", i, s.name, s.assign.Service, err, s.wantMsg)
				}
				if _, ok := a.Assignment(s.assign.Service); ok {
					t.Fatalf("step %d %s: %s still holds addresses after an error", i, s.name, s.assign.Service)
				}
				break
			}
			if err != nil {
				t.Fatalf("step %d %s: Assign(%s): %v", i, s.name, s.assign.Service, err)
			}
			if d := cmp.Diff(s.want, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
				t.Fatalf("step %d %s: Assign(%s) (-want +got):\n%s", i, s.name, s.assign.Service, d)
			}
			if stored, _ := a.Assignment(s.assign.Service); !cmp.Equal(got, stored, cmpopts.EquateComparable(netip.Addr{})) {
				t.Fatalf("step %d %s: Assignment = %v, Assign returned %v", i, s.name, stored, got)
			}
		case s.release != "":
			if got := a.Release(key(s.release)); got != s.wantReleased {
				t.Fatalf("step %d %s: Release(%s) = %v, want %v", i, s.name, s.release, got, s.wantReleased)
			}
		case s.setConfig:
			got := a.SetConfig(s.config)
			if d := cmp.Diff(s.wantDisplaced, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("step %d %s: SetConfig displaced (-want +got):\n%s", i, s.name, d)
			}
		default:
			t.Fatalf("step %d %s: empty step", i, s.name)
		}
		checkInvariants(t, a)
	}
}

// checkInvariants verifies the allocator's internal consistency: holder
// lists, sharing index, counters, and that every run tree is exactly the
// canonical decomposition of the addresses in use.
func checkInvariants(t testing.TB, a *Allocator) {
	t.Helper()
	type ps struct {
		inUse    [nfam][]u128
		services [nfam]int
		total    int
	}
	per := map[*pool]*ps{}
	for _, p := range a.pools {
		per[p] = &ps{}
	}
	n := 0
	a.services.all(func(s *service) {
		n++
		k := s.key
		if a.services.get(k) != s {
			t.Fatalf("service %v not found under its key", k)
		}
		if !s.has(v4) && !s.has(v6) {
			t.Fatalf("%v holds no address", k)
		}
		if s.flags&^(hasV4|hasV6|v6First|isLocal|inCollided) != 0 {
			t.Fatalf("%v: stray flags %b", k, s.flags)
		}
		p := a.poolOf(s)
		if p == nil || a.pools[p.name] != p {
			t.Fatalf("%v: no pool", k)
		}
		per[p].total++
		for f := range nfam {
			if !s.has(f) {
				continue
			}
			per[p].services[f]++
			if q, _ := lookup(a.index[f], f, s.addr(f)); q != p {
				t.Fatalf("%v: %s is not in its pool %q", k, s.addr(f).addr(f), p.name)
			}
			found := false
			for h := a.holders[f][s.addr(f)]; h != nil; h = h.next[f] {
				found = found || h == s
			}
			if !found {
				t.Fatalf("%v: not among the holders of %s", k, s.addr(f).addr(f))
			}
		}
		if s.sharingKey == "" && s.ports != (portSet{}) {
			t.Fatalf("%v: ports kept without a sharing key", k)
		}
	})
	if n != a.ServiceCount() {
		t.Fatalf("ServiceCount = %d, want %d", a.ServiceCount(), n)
	}
	wantShared := map[string][]keyedAddr{}
	for f := range nfam {
		for x, head := range a.holders[f] {
			var hs []*service
			for h := head; h != nil; h = h.next[f] {
				if a.services.get(h.key) != h || !h.has(f) || h.addr(f) != x {
					t.Fatalf("stale holder %v of %s", h.key, x.addr(f))
				}
				hs = append(hs, h)
			}
			for i := range hs {
				for j := i + 1; j < len(hs); j++ {
					nr := request{sharingKey: hs[j].sharingKey, local: hs[j].local(), selector: hs[j].selector, ports: hs[j].ports.list()}
					if why, _ := incompatible(hs[i], &nr); why != noClash {
						t.Fatalf("%v and %v share %s but clash (%d)", hs[i].key, hs[j].key, x.addr(f), why)
					}
				}
			}
			p, _ := lookup(a.index[f], f, x)
			per[p].inUse[f] = append(per[p].inUse[f], x)
			if head.sharingKey != "" {
				wantShared[head.sharingKey] = append(wantShared[head.sharingKey], keyedAddr{a: x, f: f})
			}
		}
	}
	sortKA := cmpopts.SortSlices(func(x, y keyedAddr) bool { return x.f < y.f || (x.f == y.f && x.a.less(y.a)) })
	gotShared := map[string][]keyedAddr{}
	for k, e := range a.shared {
		for i := range e.len() {
			gotShared[k] = append(gotShared[k], e.at(i))
		}
		if e.more != nil && len(e.more) == 0 {
			t.Fatalf("sharing index: empty overflow kept for %q", k)
		}
	}
	if d := cmp.Diff(wantShared, gotShared, sortKA, cmp.AllowUnexported(keyedAddr{}, u128{}), cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("sharing index (-want +got):\n%s", d)
	}
	for p, c := range per {
		if p.services != c.total {
			t.Fatalf("pool %q: services = %d, want %d", p.name, p.services, c.total)
		}
		for f := range nfam {
			sp := &p.spaces[f]
			if sp.services != c.services[f] {
				t.Fatalf("pool %q %s: services = %d, want %d", p.name, f, sp.services, c.services[f])
			}
			if sp.inUse != uint64(len(c.inUse[f])) {
				t.Fatalf("pool %q %s: inUse = %d, want %d", p.name, f, sp.inUse, len(c.inUse[f]))
			}
			want := canonicalRuns(sp, c.inUse[f])
			if d := cmp.Diff(want, runsOf(sp), cmp.AllowUnexported(run{}, u128{}), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("pool %q %s: runs (-want +got):\n%s", p.name, f, d)
			}
		}
	}
}

// canonicalRuns computes the runs of a set of in-use addresses naively.
func canonicalRuns(sp *space, inUse []u128) []run {
	inUse = slices.Clone(inUse)
	slices.SortFunc(inUse, func(x, y u128) int { return x.cmp(y) })
	var out []run
	for _, x := range inUse {
		if n := len(out); n > 0 {
			next, _ := out[n-1].end.inc()
			if y, ok := sp.nextAllowed(next); ok && y == x {
				out[n-1].end = x
				continue
			}
		}
		out = append(out, run{start: x, end: x})
	}
	return out
}

func runsOf(sp *space) []run {
	var out []run
	sp.runs.each(func(r run) { out = append(out, r) })
	return out
}
