package election

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Input is everything the election looks at. Speakers that pass equal
// Inputs get equal results, whatever the map iteration order, the order
// of the lists, or duplicates in them.
type Input struct {
	// Candidates lists, per IP, the names of the nodes eligible to
	// announce it. The caller has already applied node selectors, labels,
	// conditions, liveness and (for Local traffic policy) endpoints; for
	// an IP shared by several Services it passes the intersection.
	// Duplicates and empty names are ignored. An IP with no candidate gets
	// no owner.
	//
	// Passing the same slice for many IPs (same backing array and length)
	// is cheaper: the list is resolved once.
	Candidates map[netip.Addr][]string
	// Claims lists, for each live node, the IPs it currently announces
	// and since when, as gossiped (membership.Claims). A claim counts only
	// where the claiming node is a candidate for the IP; other claims are
	// ignored. A node that claims an IP more than once counts with its
	// newest claim. Lists sorted by IP (as membership gives them) are
	// looked up faster.
	Claims map[string][]Claim
}

// Claim is a node's claim on an IP: it announces IP, and took it over at
// Epoch. Among the candidates claiming an IP the newest claim wins (see
// the package documentation).
type Claim struct {
	IP netip.Addr
	// Epoch is when the claimant took IP over, in Unix milliseconds. The
	// claimant keeps the same Epoch for as long as it holds IP; it takes
	// a new one only when it takes IP over again after losing it.
	Epoch int64
}

// Elect returns the owner of every IP of in.Candidates that has at least
// one candidate, by the rule in the package documentation. IPs without a
// candidate are absent from the result. Elect does not modify in.
func Elect(in Input) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(in.Candidates))
	e := elector{
		nodeIdx: make(map[string]int32),
		lists:   make(map[listKey][]int32),
	}

	e.ips = make([]entry, 0, len(in.Candidates))
	for addr, list := range in.Candidates {
		cands := e.resolve(list)
		if len(cands) == 0 {
			continue
		}
		e.ips = append(e.ips, entry{addr: addr, key: addrKey(addr), cands: cands, owner: -1, claims: -1})
	}
	if len(e.ips) == 0 {
		return out
	}
	e.sortAddrs()

	load := make([]int32, len(e.nodes))
	if len(in.Claims) > 0 {
		e.electClaimed(in.Claims, load)
	}
	e.placeUnclaimed(load)

	for i := range e.ips {
		out[e.ips[i].addr] = e.nodes[e.ips[i].owner].name
	}
	return out
}

// entry is one IP with at least one candidate.
type entry struct {
	addr  netip.Addr
	key   uint64  // addrKey(addr)
	cands []int32 // node indices, deduplicated; may be shared between entries
	owner int32   // node index, -1 until elected
	// claims heads the list of claiming nodes, threaded through
	// elector.claimNode/claimNext; -1 when none.
	claims int32
}

type node struct {
	name string
	key  uint64 // nodeKey(name)
}

// listKey identifies a candidate slice by its backing array and length.
type listKey struct {
	first *string
	n     int
}

// addrOrder is an entry's place in address order, without pointers so
// that sorting it is cheap: family bits, then the 128-bit address, then
// (rarely needed) the zone via netip.Addr.Compare.
type addrOrder struct {
	hi, lo uint64
	bits   int32
	idx    int32 // into elector.ips
}

func orderOf(a netip.Addr, idx int32) addrOrder {
	b := a.As16()
	return addrOrder{
		hi:   binary.BigEndian.Uint64(b[:8]),
		lo:   binary.BigEndian.Uint64(b[8:]),
		bits: int32(a.BitLen()),
		idx:  idx,
	}
}

// elector holds the working state of one Elect call.
type elector struct {
	ips []entry
	// sorted holds every entry in netip.Addr.Compare order.
	sorted  []addrOrder
	nodes   []node
	nodeIdx map[string]int32
	lists   map[listKey][]int32
	// arena backs the resolved candidate lists; a new chunk is started
	// when one is full, so earlier lists never move.
	arena []int32
	// stamp[i] == gen marks node i as seen in the current pass.
	stamp []uint32
	gen   uint32

	// prev holds the node indices of the previous list resolved, by
	// position: callers usually build their lists from one node list, so
	// the name at position p is most often the one seen there before and
	// a string comparison replaces a map lookup.
	prev []int32

	// The claims of step 1, one list per IP threaded through claimNext.
	claimNode, claimNext []int32
	claimEpoch           []int64
}

// sortAddrs fills e.sorted. IPv4 addresses, the common case, are sorted
// as plain integers (address << 32 | index), which is several times
// faster than a comparison function; the rest (the invalid address,
// IPv6) with compare.
func (e *elector) sortAddrs() {
	e.sorted = make([]addrOrder, 0, len(e.ips))
	v4 := make([]uint64, 0, len(e.ips))
	for i := range e.ips {
		if a := e.ips[i].addr; a.Is4() {
			v4 = append(v4, uint64(binary.BigEndian.Uint32(a.AsSlice()))<<32|uint64(i))
		} else {
			e.sorted = append(e.sorted, orderOf(a, int32(i)))
		}
	}
	slices.Sort(v4)
	slices.SortFunc(e.sorted, e.compare)
	// The invalid address (bit length 0) sorts first, IPv6 after IPv4.
	n := 0
	for n < len(e.sorted) && e.sorted[n].bits == 0 {
		n++
	}
	e.sorted = slices.Grow(e.sorted, len(v4))
	e.sorted = e.sorted[:len(e.sorted)+len(v4)]
	copy(e.sorted[n+len(v4):], e.sorted[n:len(e.sorted)-len(v4)])
	for j, k := range v4 {
		e.sorted[n+j] = orderOf(e.ips[uint32(k)].addr, int32(uint32(k)))
	}
}

func (e *elector) compare(a, b addrOrder) int {
	if c := cmpAddr(a, b); c != 0 {
		return c
	}
	return e.ips[a.idx].addr.Compare(e.ips[b.idx].addr)
}

// cmpAddr orders like netip.Addr.Compare but for the zone.
func cmpAddr(x, t addrOrder) int {
	if c := cmp.Compare(x.bits, t.bits); c != 0 {
		return c
	}
	if c := cmp.Compare(x.hi, t.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, t.lo)
}

// find returns the index in e.ips of a, or -1, and the position in
// e.sorted to start the next search from. Searching from the previous
// position (galloping forward) makes a sorted claim list cost
// O(log gap) per address instead of O(log I).
func (e *elector) find(a netip.Addr, from int) (int32, int) {
	t := orderOf(a, -1)
	n := len(e.sorted)
	lo, hi := 0, n
	if from < n && cmpAddr(e.sorted[from], t) <= 0 {
		lo = from
		for step := 1; ; step *= 2 {
			next := lo + step
			if next >= n {
				break
			}
			if cmpAddr(e.sorted[next], t) > 0 {
				hi = next
				break
			}
			lo = next
		}
	}
	j, _ := slices.BinarySearchFunc(e.sorted[lo:hi], t, cmpAddr)
	j += lo
	// Entries equal but for the zone are adjacent.
	for k := j; k < n && cmpAddr(e.sorted[k], t) == 0; k++ {
		if i := e.sorted[k].idx; e.ips[i].addr == a {
			return i, k
		}
	}
	return -1, j
}

// resolve turns a candidate list into deduplicated node indices,
// interning new names.
func (e *elector) resolve(list []string) []int32 {
	if len(list) == 0 {
		return nil
	}
	k := listKey{&list[0], len(list)}
	if r, ok := e.lists[k]; ok {
		return r
	}
	if cap(e.arena)-len(e.arena) < len(list) {
		e.arena = make([]int32, 0, max(1024, len(list)))
	}
	e.gen++
	start := len(e.arena)
	for p, name := range list {
		if name == "" {
			continue
		}
		var i int32
		if p < len(e.prev) && e.nodes[e.prev[p]].name == name {
			i = e.prev[p]
		} else {
			var ok bool
			if i, ok = e.nodeIdx[name]; !ok {
				i = int32(len(e.nodes))
				e.nodeIdx[name] = i
				e.nodes = append(e.nodes, node{name: name, key: nodeKey(name)})
				e.stamp = append(e.stamp, 0)
			}
			if p < len(e.prev) {
				e.prev[p] = i
			} else if p == len(e.prev) {
				e.prev = append(e.prev, i)
			}
		}
		if e.stamp[i] == e.gen {
			continue
		}
		e.stamp[i] = e.gen
		e.arena = append(e.arena, i)
	}
	r := e.arena[start:len(e.arena):len(e.arena)]
	e.lists[k] = r
	return r
}

// electClaimed is step 1: each IP claimed by at least one of its
// candidates goes to the claiming candidate with the newest claim, ties
// to the best score.
func (e *elector) electClaimed(claims map[string][]Claim, load []int32) {
	ips := e.ips
	for name, list := range claims {
		n, ok := e.nodeIdx[name]
		if !ok {
			continue // a candidate nowhere
		}
		pos := 0
		for _, c := range list {
			var j int32
			j, pos = e.find(c.IP, pos)
			if j < 0 {
				continue
			}
			e.claimNode = append(e.claimNode, n)
			e.claimEpoch = append(e.claimEpoch, c.Epoch)
			e.claimNext = append(e.claimNext, ips[j].claims)
			ips[j].claims = int32(len(e.claimNode) - 1)
		}
	}
	for j := range ips {
		en := &ips[j]
		if en.claims < 0 {
			continue
		}
		e.gen++
		for _, c := range en.cands {
			e.stamp[c] = e.gen
		}
		best, bestEpoch, bestScore := int32(-1), int64(0), uint64(0)
		for k := en.claims; k >= 0; k = e.claimNext[k] {
			c := e.claimNode[k]
			if e.stamp[c] != e.gen {
				continue // not a candidate for this IP
			}
			ep := e.claimEpoch[k]
			if best >= 0 && ep < bestEpoch {
				continue
			}
			s := combine(en.key, e.nodes[c].key)
			if best < 0 || ep > bestEpoch || e.better(s, c, bestScore, best) {
				best, bestEpoch, bestScore = c, ep, s
			}
		}
		if best >= 0 {
			en.owner = best
			load[best]++
		}
	}
}

// placeUnclaimed is step 2: the IPs still without owner, fewest
// candidates first then ascending address, each to its least-loaded
// candidate, ties to the best score.
func (e *elector) placeUnclaimed(load []int32) {
	ips := e.ips
	// Counting sort by candidate count; stable, so ascending address
	// within a count.
	start := make([]int, len(e.nodes)+2)
	n := 0
	for j := range ips {
		if ips[j].owner < 0 {
			start[len(ips[j].cands)+1]++
			n++
		}
	}
	if n == 0 {
		return
	}
	for c := 1; c < len(start); c++ {
		start[c] += start[c-1]
	}
	order := make([]int32, n)
	for _, o := range e.sorted {
		if j := o.idx; ips[j].owner < 0 {
			c := len(ips[j].cands)
			order[start[c]] = int32(j)
			start[c]++
		}
	}

	for _, j := range order {
		en := &ips[j]
		best := en.cands[0]
		bestScore := combine(en.key, e.nodes[best].key)
		for _, c := range en.cands[1:] {
			if load[c] > load[best] {
				continue
			}
			s := combine(en.key, e.nodes[c].key)
			if load[c] < load[best] || e.better(s, c, bestScore, best) {
				best, bestScore = c, s
			}
		}
		en.owner = best
		load[best]++
	}
}

// better reports whether node a with score sa beats node b with score
// sb: the higher score wins; equal scores (an FNV-1a collision of the
// names) go to the smaller name.
func (e *elector) better(sa uint64, a int32, sb uint64, b int32) bool {
	if sa != sb {
		return sa > sb
	}
	return e.nodes[a].name < e.nodes[b].name
}
