package allocator

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/model"
)

func v4x(s string) u128 { _, x := addrKey(netip.MustParseAddr(s)); return x }

// takeAddr takes x, allocatable and free, the way a specific address is
// taken.
func (s *space) takeAddr(x u128) {
	sl := s.slotOf(x)
	s.take(&sl)
}

func (s *space) lowest() (u128, bool) {
	sl, ok := s.lowestFree()
	return sl.x, ok
}

func TestU128(t *testing.T) {
	for _, tc := range []struct {
		in     string
		f      fam
		x      u128
		out    string
		family model.Family
	}{
		{in: "10.0.0.1", f: v4, x: u128{lo: 0x0a000001}, out: "10.0.0.1", family: model.IPv4},
		{in: "::ffff:10.0.0.1", f: v4, x: u128{lo: 0x0a000001}, out: "10.0.0.1", family: model.IPv4},
		{in: "2001:db8::1", f: v6, x: u128{hi: 0x20010db800000000, lo: 1}, out: "2001:db8::1", family: model.IPv6},
		{in: "fe80::1%eth0", f: v6, x: u128{hi: 0xfe80000000000000, lo: 1}, out: "fe80::1", family: model.IPv6},
		{in: "::", f: v6, x: u128{}, out: "::", family: model.IPv6},
	} {
		t.Run(tc.in, func(t *testing.T) {
			f, x := addrKey(netip.MustParseAddr(tc.in))
			if f != tc.f || x != tc.x {
				t.Fatalf("addrKey = %v %v, want %v %v", f, x, tc.f, tc.x)
			}
			if got := x.addr(f).String(); got != tc.out {
				t.Fatalf("addr = %s, want %s", got, tc.out)
			}
			if f.model() != tc.family || famOf(tc.family) != f {
				t.Fatalf("family conversions of %v", f)
			}
		})
	}

	max := u128{math.MaxUint64, math.MaxUint64}
	if _, ok := max.inc(); ok {
		t.Error("max.inc overflowed silently")
	}
	if _, ok := (u128{}).dec(); ok {
		t.Error("zero.dec underflowed silently")
	}
	if y, _ := (u128{0, math.MaxUint64}).inc(); y != (u128{1, 0}) {
		t.Errorf("carry: %v", y)
	}
	if y, _ := (u128{1, 0}).dec(); y != (u128{0, math.MaxUint64}) {
		t.Errorf("borrow: %v", y)
	}
	for _, tc := range []struct {
		x, y u128
		want uint64
	}{
		{u128{0, 5}, u128{0, 5}, 1},
		{u128{0, 0}, u128{0, 255}, 256},
		{u128{7, 0}, u128{7, math.MaxUint64 - 1}, math.MaxUint64},
		{u128{7, 0}, u128{7, math.MaxUint64}, math.MaxUint64}, // 2^64: saturated
		{u128{7, 1}, u128{8, 0}, math.MaxUint64},
		{u128{7, 5}, u128{8, 3}, math.MaxUint64},
		{u128{7, 5}, u128{8, 2}, math.MaxUint64 - 1},
		{u128{}, max, math.MaxUint64},
	} {
		if got := tc.x.sizeTo(tc.y); got != tc.want {
			t.Errorf("%v.sizeTo(%v) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
	if satAdd(math.MaxUint64-1, 5) != math.MaxUint64 || satAdd(2, 3) != 5 {
		t.Error("satAdd")
	}
	if (u128{1, 2}).cmp(u128{1, 2}) != 0 || (u128{1, 2}).cmp(u128{2, 0}) != -1 || (u128{2, 0}).cmp(u128{1, 9}) != 1 ||
		(u128{1, 3}).cmp(u128{1, 2}) != 1 || (u128{1, 1}).cmp(u128{1, 2}) != -1 {
		t.Error("cmp")
	}
	if got := (u128{1, 0xff}).String(); got != "0x1_ff" {
		t.Errorf("String = %q", got)
	}
	if v4.String() != "IPv4" || v6.String() != "IPv6" || v4.other() != v6 {
		t.Error("fam")
	}
}

func TestBuggyCount(t *testing.T) {
	for _, tc := range [][2]uint32{{0, 0}, {0, 255}, {1, 254}, {255, 256}, {10, 1000}, {0xffffff00, 0xffffffff}, {0, 0xffffffff}} {
		var want uint64
		if uint64(tc[1])-uint64(tc[0]) < 1<<20 {
			for x := uint64(tc[0]); x <= uint64(tc[1]); x++ {
				if b := x & 0xff; b == 0 || b == 255 {
					want++
				}
			}
		} else {
			want = 1 << 25 // 2 per /24
		}
		if got := buggyCount(tc[0], tc[1]); got != want {
			t.Errorf("buggyCount(%d, %d) = %d, want %d", tc[0], tc[1], got, want)
		}
	}
}

// TestAllowed checks nextAllowed, prevAllowed and allocatable against a
// brute force over small IPv4 spans, with and without avoiding buggy
// addresses.
func TestAllowed(t *testing.T) {
	spans := []span{
		{v4x("10.0.0.0"), v4x("10.0.0.0")},     // only buggy
		{v4x("10.0.0.5"), v4x("10.0.1.3")},     // crosses a /24
		{v4x("10.0.1.255"), v4x("10.0.2.0")},   // only buggy
		{v4x("10.0.2.200"), v4x("10.0.2.255")}, // ends buggy
		{v4x("10.0.4.0"), v4x("10.0.4.1")},     // starts buggy
	}
	lo, hi := v4x("9.255.255.250"), v4x("10.0.5.10")
	for _, avoid := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "avoid"}[avoid], func(t *testing.T) {
			s := newSpace(v4, avoid, spans)
			ok := func(x u128) bool {
				if avoid && x.buggy() {
					return false
				}
				for _, sp := range spans {
					if !x.less(sp.first) && !sp.last.less(x) {
						return true
					}
				}
				return false
			}
			var capacity uint64
			for x := lo; !hi.less(x); x.lo++ {
				if ok(x) {
					capacity++
				}
				if s.allocatable(x) != ok(x) {
					t.Fatalf("allocatable(%s) = %v", x.addr(v4), !ok(x))
				}
				want, wantOK := u128{}, false
				for y := x; !hi.less(y); y.lo++ {
					if ok(y) {
						want, wantOK = y, true
						break
					}
				}
				if got, gotOK := s.nextAllowed(x); got != want || gotOK != wantOK {
					t.Fatalf("nextAllowed(%s) = %s %v, want %s %v", x.addr(v4), got.addr(v4), gotOK, want.addr(v4), wantOK)
				}
				want, wantOK = u128{}, false
				for y := x; !y.less(lo); y.lo-- {
					if ok(y) {
						want, wantOK = y, true
						break
					}
				}
				if got, gotOK := s.prevAllowed(x); got != want || gotOK != wantOK {
					t.Fatalf("prevAllowed(%s) = %s %v, want %s %v", x.addr(v4), got.addr(v4), gotOK, want.addr(v4), wantOK)
				}
			}
			if s.capacity != capacity {
				t.Fatalf("capacity = %d, want %d", s.capacity, capacity)
			}
		})
	}
	// Buggy addresses at the very bottom of the IPv4 space.
	s := newSpace(v4, true, []span{{u128{}, u128{lo: 0}}, {u128{lo: 2}, u128{lo: 3}}})
	if _, ok := s.prevAllowed(u128{lo: 1}); ok {
		t.Error("prevAllowed(0.0.0.1) found an address")
	}
	if x, ok := s.prevAllowed(u128{lo: 9}); !ok || x != (u128{lo: 3}) {
		t.Errorf("prevAllowed(0.0.0.9) = %v %v", x, ok)
	}
}

func TestSpans(t *testing.T) {
	sp := func(a, b string) span { return span{v4x(a), v4x(b)} }
	opts := cmp.AllowUnexported(span{}, u128{})
	for _, tc := range []struct {
		name string
		in   []span
		want []span
	}{
		{"empty", nil, nil},
		{"sorts", []span{sp("10.0.0.9", "10.0.0.9"), sp("10.0.0.1", "10.0.0.2")}, []span{sp("10.0.0.1", "10.0.0.2"), sp("10.0.0.9", "10.0.0.9")}},
		{"adjacent", []span{sp("10.0.0.1", "10.0.0.2"), sp("10.0.0.3", "10.0.0.4")}, []span{sp("10.0.0.1", "10.0.0.4")}},
		{"overlap", []span{sp("10.0.0.1", "10.0.0.5"), sp("10.0.0.3", "10.0.0.4")}, []span{sp("10.0.0.1", "10.0.0.5")}},
		{"top", []span{{u128{0, 5}, u128{math.MaxUint64, math.MaxUint64}}, {u128{0, 1}, u128{0, 9}}}, []span{{u128{0, 1}, u128{math.MaxUint64, math.MaxUint64}}}},
	} {
		t.Run("normalize/"+tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, normalizeSpans(tc.in), opts, cmpopts.EquateEmpty()); d != "" {
				t.Error(d)
			}
		})
	}
	for _, tc := range []struct {
		name    string
		a, b    []span
		want    []span
		ignored bool
	}{
		{name: "nothing", a: []span{sp("10.0.0.1", "10.0.0.9")}, want: []span{sp("10.0.0.1", "10.0.0.9")}},
		{name: "middle", a: []span{sp("10.0.0.1", "10.0.0.9")}, b: []span{sp("10.0.0.3", "10.0.0.4"), sp("10.0.0.6", "10.0.0.6")},
			want: []span{sp("10.0.0.1", "10.0.0.2"), sp("10.0.0.5", "10.0.0.5"), sp("10.0.0.7", "10.0.0.9")}},
		{name: "all", a: []span{sp("10.0.0.3", "10.0.0.4")}, b: []span{sp("10.0.0.1", "10.0.0.9")}},
		{name: "edges", a: []span{sp("10.0.0.1", "10.0.0.9"), sp("10.0.1.1", "10.0.1.9")}, b: []span{sp("10.0.0.0", "10.0.0.1"), sp("10.0.0.9", "10.0.1.1")},
			want: []span{sp("10.0.0.2", "10.0.0.8"), sp("10.0.1.2", "10.0.1.9")}},
		{name: "before and after", a: []span{sp("10.0.0.5", "10.0.0.6")}, b: []span{sp("10.0.0.1", "10.0.0.2"), sp("10.0.0.8", "10.0.0.9")},
			want: []span{sp("10.0.0.5", "10.0.0.6")}},
	} {
		t.Run("subtract/"+tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, subtractSpans(tc.a, tc.b), opts, cmpopts.EquateEmpty()); d != "" {
				t.Error(d)
			}
		})
	}
}

// TestSpaceAgainstBruteForce takes and releases random addresses of
// small spaces and compares lowestFree and the runs with a naive model.
func TestSpaceAgainstBruteForce(t *testing.T) {
	spans := []span{{v4x("10.0.0.250"), v4x("10.0.2.5")}, {v4x("10.0.2.9"), v4x("10.0.2.9")}, {v4x("10.0.3.0"), v4x("10.0.3.1")}, {v4x("10.0.3.254"), v4x("10.0.4.3")}}
	for _, avoid := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "avoid"}[avoid], func(t *testing.T) {
			s := newSpace(v4, avoid, spans)
			var all []u128
			for _, sp := range spans {
				for x := sp.first; !sp.last.less(x); x.lo++ {
					if !avoid || !x.buggy() {
						all = append(all, x)
					}
				}
			}
			used := map[u128]bool{}
			rnd := rand.New(rand.NewPCG(1, 2))
			for i := range 20000 {
				x := all[rnd.IntN(len(all))]
				if sl, ok := s.lowestFree(); ok && rnd.IntN(3) == 0 {
					// Take the lowest free address through its slot,
					// which must be the slot of that address.
					if d := cmp.Diff(s.slotOf(sl.x), sl, cmp.AllowUnexported(slot{}, run{}, u128{})); d != "" {
						t.Fatalf("op %d: lowestFree slot (-slotOf +got):\n%s", i, d)
					}
					s.take(&sl)
					used[sl.x] = true
				} else if used[x] {
					s.release(x)
					delete(used, x)
				} else {
					s.takeAddr(x)
					used[x] = true
				}
				want, wantOK := u128{}, false
				for _, y := range all {
					if !used[y] {
						want, wantOK = y, true
						break
					}
				}
				if got, ok := s.lowest(); got != want || ok != wantOK {
					t.Fatalf("op %d: lowestFree = %s %v, want %s %v", i, got.addr(v4), ok, want.addr(v4), wantOK)
				}
				if i%97 == 0 || len(used) == len(all) {
					var in []u128
					for y := range used {
						in = append(in, y)
						if !s.covered(y) {
							t.Fatalf("%s in use but not covered", y.addr(v4))
						}
					}
					if d := cmp.Diff(canonicalRuns(&s, in), runsOf(&s), cmp.AllowUnexported(run{}, u128{}), cmpopts.EquateEmpty()); d != "" {
						t.Fatalf("op %d: runs (-want +got):\n%s", i, d)
					}
				}
			}
		})
	}
}

// TestSixteenWithHoles fills a /16 that avoids buggy addresses, leaving
// scattered holes: the runs must stay one per hole (buggy addresses glue
// the /24s together) and the holes come out lowest first.
func TestSixteenWithHoles(t *testing.T) {
	s := newSpace(v4, true, []span{{v4x("10.1.0.0"), v4x("10.1.255.255")}})
	if s.capacity != 65536-512 {
		t.Fatalf("capacity = %d", s.capacity)
	}
	var holes []u128
	n := 0
	for x := v4x("10.1.0.0"); !v4x("10.1.255.255").less(x); x.lo++ {
		if x.buggy() {
			continue
		}
		if n%4999 == 1234 || x.lo&0xff == 1 && (x.lo>>8)&0xff == 77 || x.lo&0xff == 254 && (x.lo>>8)&0xff == 200 {
			holes = append(holes, x)
		} else {
			s.takeAddr(x)
		}
		n++
	}
	if got, want := s.runs.len(), len(holes)+1; got != want {
		t.Fatalf("%d runs for %d holes, want %d", got, len(holes), want)
	}
	if s.inUse != s.capacity-uint64(len(holes)) {
		t.Fatalf("inUse = %d", s.inUse)
	}
	for _, h := range holes {
		got, ok := s.lowest()
		if !ok || got != h {
			t.Fatalf("lowestFree = %s %v, want %s", got.addr(v4), ok, h.addr(v4))
		}
		s.takeAddr(got)
	}
	if s.runs.len() != 1 {
		t.Fatalf("full /16 has %d runs, want 1", s.runs.len())
	}
	if got, ok := s.lowest(); ok {
		t.Fatalf("full /16 has a free address %s", got.addr(v4))
	}
	// Releasing one address of a full /16 splits the run in two.
	s.release(v4x("10.1.128.1"))
	if s.runs.len() != 2 {
		t.Fatalf("%d runs, want 2", s.runs.len())
	}
	if got, _ := s.lowest(); got != v4x("10.1.128.1") {
		t.Fatalf("lowestFree = %s", got.addr(v4))
	}
	// The first and last addresses.
	s.release(v4x("10.1.0.1"))
	s.release(v4x("10.1.255.254"))
	want := []run{{v4x("10.1.0.2"), v4x("10.1.127.254")}, {v4x("10.1.128.2"), v4x("10.1.255.253")}}
	if d := cmp.Diff(want, runsOf(&s), cmp.AllowUnexported(run{}, u128{})); d != "" {
		t.Fatalf("runs (-want +got):\n%s", d)
	}
}

// TestSpaceTopOfIPv6 exercises the last address of the IPv6 space, where
// end+1 overflows.
func TestSpaceTopOfIPv6(t *testing.T) {
	top := u128{math.MaxUint64, math.MaxUint64}
	first := u128{math.MaxUint64, math.MaxUint64 - 1}
	s := newSpace(v6, false, []span{{first, top}})
	for range 2 {
		x, ok := s.lowest()
		if !ok {
			t.Fatal("no free address")
		}
		s.takeAddr(x)
	}
	if x, ok := s.lowest(); ok {
		t.Fatalf("lowestFree = %v on a full space", x)
	}
	s.release(top)
	if x, _ := s.lowest(); x != top {
		t.Fatalf("lowestFree = %v", x)
	}
	if empty := newSpace(v6, false, nil); empty.has() {
		t.Fatal("empty space has addresses")
	} else if _, ok := empty.lowest(); ok {
		t.Fatal("empty space has a free address")
	}
	allBuggy := newSpace(v4, true, []span{{v4x("10.0.0.255"), v4x("10.0.1.0")}})
	if _, ok := allBuggy.lowest(); ok || allBuggy.capacity != 0 {
		t.Fatal("a space of buggy addresses has a free address")
	}
}

// allocatable reports whether x is in a span and not avoided.
func (s *space) allocatable(x u128) bool {
	y, ok := s.nextAllowed(x)
	return ok && y == x
}

// covered reports whether x is occupied by a run (for an allocatable x:
// whether it is in use).
func (s *space) covered(x u128) bool {
	i := s.runs.floor(x)
	return i != 0 && !s.runs.at(i).end.less(x)
}
