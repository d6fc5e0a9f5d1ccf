package allocator

import "slices"

// span is an inclusive interval of addresses of one family.
type span struct{ first, last u128 }

// run is a maximal stretch [start, end] of occupied addresses of a space.
// An address is allocatable when it lies in one of the space's spans and
// is not buggy (when the pool avoids buggy addresses); it is occupied
// when it is in use or not allocatable. Invariants:
//   - start and end are in use;
//   - every address in [start, end] is occupied;
//   - between two consecutive runs lies at least one allocatable address,
//     which is therefore free.
//
// So runs are glued across buggy addresses and across the holes between
// a pool's ranges, and the address right after a run, once skipped past
// what is not allocatable, is always free: the lowest free address is
// found from the first two runs whatever the fill pattern (a /16 avoiding
// buggy addresses and full but for a few holes has one run per hole).
type run struct{ start, end u128 }

// space is the address bookkeeping of one family of one pool. It holds
// nothing per free address.
type space struct {
	f     fam
	avoid bool   // skip IPv4 .0 and .255
	spans []span // sorted, disjoint, non-adjacent
	runs  runTree

	capacity uint64 // allocatable addresses, saturated
	inUse    uint64 // addresses in use
	services int    // Services holding an address of this space
}

func newSpace(f fam, avoid bool, spans []span) space {
	s := space{f: f, avoid: avoid && f == v4, spans: spans}
	for _, sp := range spans {
		n := sp.first.sizeTo(sp.last)
		if s.avoid {
			n -= buggyCount(uint32(sp.first.lo), uint32(sp.last.lo))
		}
		s.capacity = satAdd(s.capacity, n)
	}
	return s
}

// buggyCount counts the IPv4 addresses in [first, last] ending in .0 or
// .255.
func buggyCount(first, last uint32) uint64 {
	upTo := func(n int64, k int64) int64 { // x in [0, n] with x%256 == k
		if n < k {
			return 0
		}
		return (n-k)/256 + 1
	}
	f, l := int64(first), int64(last)
	return uint64(upTo(l, 0) - upTo(f-1, 0) + upTo(l, 255) - upTo(f-1, 255))
}

// has reports whether the space has any address at all.
func (s *space) has() bool { return len(s.spans) > 0 }

// nextAllowed returns the lowest allocatable address >= x.
func (s *space) nextAllowed(x u128) (u128, bool) {
	// First span whose last >= x.
	lo, hi := 0, len(s.spans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.spans[m].last.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < len(s.spans); i++ {
		sp := s.spans[i]
		y := x
		if y.less(sp.first) {
			y = sp.first
		}
		if s.avoid {
			for y.buggy() { // at most .255 -> .0 -> .1
				y.lo++
			}
		}
		if !sp.last.less(y) {
			return y, true
		}
	}
	return u128{}, false
}

// prevAllowed returns the highest allocatable address <= x.
func (s *space) prevAllowed(x u128) (u128, bool) {
	// Last span whose first <= x.
	lo, hi := 0, len(s.spans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !x.less(s.spans[m].first) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0; i-- {
		sp := s.spans[i]
		y := x
		if sp.last.less(y) {
			y = sp.last
		}
		if s.avoid {
			for y.buggy() { // at most .0 -> .255 -> .254
				if y.lo == 0 {
					return u128{}, false
				}
				y.lo--
			}
		}
		if !y.less(sp.first) {
			return y, true
		}
	}
	return u128{}, false
}

// slot is a free allocatable address x with the runs just below and
// just above it (node indices, 0 when none), as take needs them. A slot
// is valid until the space changes.
type slot struct {
	x           u128
	left, right int32
}

// lowestFree returns the lowest allocatable address not in use, as a
// slot. The lowest allocatable address is either free or the start of
// the first run, and the address after that run is free by the run
// invariant. O(log runs + log spans).
func (s *space) lowestFree() (slot, bool) {
	if !s.has() {
		return slot{}, false
	}
	x0, ok := s.nextAllowed(s.spans[0].first)
	if !ok {
		return slot{}, false
	}
	first := s.runs.min()
	if first == 0 || s.runs.at(first).start != x0 {
		return slot{x: x0, right: first}, true
	}
	e, ok := s.runs.at(first).end.inc()
	if !ok {
		return slot{}, false
	}
	x, ok := s.nextAllowed(e)
	if !ok {
		return slot{}, false
	}
	return slot{x: x, left: first, right: s.runs.higher(x)}, true
}

// slotOf returns the slot of x, allocatable and free.
func (s *space) slotOf(x u128) slot {
	return slot{x: x, left: s.runs.floor(x), right: s.runs.higher(x)}
}

// take marks the slot's address in use, merging it with the runs around
// it when only unallocatable addresses lie between. Most takes change a
// run in place.
func (s *space) take(sl *slot) {
	x := sl.x
	mergeL, mergeR := false, false
	if sl.left != 0 {
		n, _ := s.runs.at(sl.left).end.inc() // left.end < x
		y, ok := s.nextAllowed(n)
		mergeL = ok && y == x
	}
	if sl.right != 0 {
		n, _ := x.inc() // x < right.start
		y, ok := s.nextAllowed(n)
		mergeR = ok && y == s.runs.at(sl.right).start
	}
	switch {
	case mergeL && mergeR:
		r := s.runs.at(sl.right).run
		s.runs.at(sl.left).end = r.end
		s.runs.delete(r.start)
	case mergeL:
		s.runs.at(sl.left).end = x
	case mergeR:
		s.runs.at(sl.right).start = x // still above left: order kept
	default:
		s.runs.insert(run{start: x, end: x})
	}
	s.inUse++
}

// release marks x, in use, free.
func (s *space) release(x u128) {
	c := s.runs.at(s.runs.floor(x)) // covers x
	switch {
	case c.start == x && c.end == x:
		s.runs.delete(x)
	case c.start == x:
		n, _ := x.inc()
		c.start, _ = s.nextAllowed(n) // <= c.end, which is in use
	case c.end == x:
		p, _ := x.dec()
		c.end, _ = s.prevAllowed(p) // >= c.start, which is in use
	default:
		n, _ := x.inc()
		p, _ := x.dec()
		st, _ := s.nextAllowed(n)
		right := run{start: st, end: c.end}
		c.end, _ = s.prevAllowed(p)
		s.runs.insert(right) // c is not used after this: insert may move nodes
	}
	s.inUse--
}

// normalizeSpans sorts spans and merges overlapping or adjacent ones.
func normalizeSpans(in []span) []span {
	slices.SortFunc(in, func(a, b span) int { return a.first.cmp(b.first) })
	out := in[:0]
	for _, sp := range in {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next, ok := last.last.inc()
			if !ok || !next.less(sp.first) { // overlaps or touches
				if last.last.less(sp.last) {
					last.last = sp.last
				}
				continue
			}
		}
		out = append(out, sp)
	}
	return out
}

// subtractSpans returns a \ b; both sorted, disjoint.
func subtractSpans(a, b []span) []span {
	var out []span
	j := 0
	for _, sp := range a {
		cur, alive := sp, true
		for j < len(b) && b[j].last.less(cur.first) {
			j++
		}
		for k := j; alive && k < len(b) && !cur.last.less(b[k].first); k++ {
			// b[k] overlaps cur.
			if cur.first.less(b[k].first) {
				e, _ := b[k].first.dec()
				out = append(out, span{first: cur.first, last: e})
			}
			if b[k].last.less(cur.last) {
				cur.first, _ = b[k].last.inc()
			} else {
				alive = false
			}
		}
		if alive {
			out = append(out, cur)
		}
	}
	return out
}
