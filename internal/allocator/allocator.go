package allocator

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/herald-lb/herald/internal/model"
)

// Allocator assigns pool addresses to Services. The zero value is not
// usable; call New. It is not safe for concurrent use: the caller
// serialises calls (one mutex around it).
type Allocator struct {
	pools map[string]*pool
	// auto are the autoAssign pools in the order they are tried.
	auto []*pool
	// index maps addresses to pools: per family, sorted disjoint spans.
	index [nfam][]indexEntry

	services serviceTable
	// holders maps each address in use to the head of the list of the
	// Services holding it, linked through service.next.
	holders [nfam]map[u128]*service
	// shared maps a sharing key to the addresses held under it.
	shared map[string]keyAddrs
	// spare holds released service records for reuse, so that churn does
	// not allocate.
	spare []*service
}

// maxSpare bounds Allocator.spare.
const maxSpare = 64

// pool is the allocator's state for one model.Pool.
type pool struct {
	name     string
	cfg      *model.Pool
	spaces   [nfam]space
	services int // Services holding addresses of this pool
}

// narrowing is a Service that keeps some of its families: lost[f] go.
type narrowing struct {
	s    *service
	lost [nfam]bool
}

type indexEntry struct {
	span
	pool *pool
}

// Displaced is an assignment SetConfig released, in whole or in part,
// because its addresses are no longer assignable.
type Displaced struct {
	Service model.ServiceKey
	// IPs are the released addresses, primary family first.
	IPs []netip.Addr
	// Kept are the addresses the Service keeps: a dual-stack Service's
	// address when only its other family's went (it holds Kept alone
	// until it is assigned again), or all of them when they are now in
	// another pool (IPs is then empty).
	Kept []netip.Addr
	// Pool is the pool they were assigned from.
	Pool string
	// Reason says why, for a human: "192.168.1.7 is no longer in any pool".
	Reason string
}

// FamilyStats counts one address family of a pool.
type FamilyStats struct {
	// Capacity is the number of assignable addresses, saturated at
	// math.MaxUint64 (an IPv6 /64 has 2^64).
	Capacity uint64
	// InUse is the number of distinct addresses held; a shared address
	// counts once.
	InUse uint64
	// Services is the number of Services holding an address of this
	// family in the pool.
	Services int
}

// PoolStats counts a pool's addresses and Services.
type PoolStats struct {
	IPv4, IPv6 FamilyStats
	// Services is the number of distinct Services holding addresses of
	// the pool (a dual-stack Service counts once).
	Services int
}

// New returns an allocator without pools: every Assign fails until
// SetConfig.
func New() *Allocator {
	return &Allocator{
		pools:    map[string]*pool{},
		services: newServiceTable(),
		holders:  [nfam]map[u128]*service{{}, {}},
		shared:   map[string]keyAddrs{},
	}
}

// ServiceCount returns the number of Services holding addresses.
func (a *Allocator) ServiceCount() int { return a.services.len() }

// Stats returns the counters of the named pool; the zero value when the
// pool does not exist.
func (a *Allocator) Stats(name string) PoolStats {
	p := a.pools[name]
	if p == nil {
		return PoolStats{}
	}
	fs := func(s *space) FamilyStats {
		return FamilyStats{Capacity: s.capacity, InUse: s.inUse, Services: s.services}
	}
	return PoolStats{IPv4: fs(&p.spaces[v4]), IPv6: fs(&p.spaces[v6]), Services: p.services}
}

// Assignment returns what svc holds.
func (a *Allocator) Assignment(svc model.ServiceKey) (model.Assignment, bool) {
	s := a.services.get(svc)
	if s == nil {
		return model.Assignment{}, false
	}
	return a.assignment(s), true
}

// poolOf returns the pool of s's addresses.
func (a *Allocator) poolOf(s *service) *pool {
	f := s.primary()
	p, _ := lookup(a.index[f], f, s.addr(f))
	return p
}

// assignment returns what s holds, primary family first.
func (a *Allocator) assignment(s *service) model.Assignment {
	f, g := s.primary(), s.primary().other()
	n := 1
	if s.has(g) {
		n = 2
	}
	ips := make([]netip.Addr, 1, n)
	ips[0] = s.addr(f).addr(f)
	if n == 2 {
		ips = append(ips, s.addr(g).addr(g))
	}
	return model.Assignment{Pool: a.poolOf(s).name, IPs: ips}
}

// Release frees whatever svc holds. It reports whether svc held anything.
func (a *Allocator) Release(svc model.ServiceKey) bool {
	s := a.services.get(svc)
	if s == nil {
		return false
	}
	a.release(s)
	return true
}

func (a *Allocator) release(s *service) {
	p := a.poolOf(s)
	for f := range nfam {
		if s.has(f) {
			a.unhold(s, p, f)
		}
	}
	p.services--
	a.services.remove(s)
	a.recycle(s)
}

// newService returns an empty record for k.
func (a *Allocator) newService(k model.ServiceKey) *service {
	if n := len(a.spare); n > 0 {
		s := a.spare[n-1]
		a.spare = a.spare[:n-1]
		s.key = k
		return s
	}
	return &service{key: k}
}

// recycle keeps s, released and referenced nowhere, for newService.
func (a *Allocator) recycle(s *service) {
	*s = service{}
	if len(a.spare) < maxSpare {
		a.spare = append(a.spare, s)
	}
}

// target is an address a Service is about to hold.
type target struct {
	at   slot     // at.x is the address
	free bool     // at is a free slot, from lowestFree
	head *service // when not free: the address's first holder, nil if unknown
}

// hold adds s to the holders of t's address, an address of p, taking it
// if it was free. s's sharing data must be set.
func (a *Allocator) hold(s *service, p *pool, f fam, t *target) {
	x := t.at.x
	head := t.head
	if !t.free && head == nil {
		head = a.holders[f][x]
	}
	sp := &p.spaces[f]
	if head == nil {
		if t.free {
			sp.take(&t.at)
		} else {
			at := sp.slotOf(x)
			sp.take(&at)
		}
		if s.sharingKey != "" {
			a.share(s.sharingKey, f, x)
		}
	}
	s.next[f] = head
	a.holders[f][x] = s
	s.setAddr(f, x)
	sp.services++
}

// unhold removes s from the holders of its address of family f, in p,
// freeing the address when s was its last holder.
func (a *Allocator) unhold(s *service, p *pool, f fam) {
	x := s.addr(f)
	if a.unlink(s, f) {
		p.spaces[f].release(x)
	}
	p.spaces[f].services--
}

// unlink removes s from the holder list of its address of family f and,
// when the list empties, the address from the sharing index. It reports
// whether the address has no holder left. It does not touch the spaces.
func (a *Allocator) unlink(s *service, f fam) (emptied bool) {
	x := s.addr(f)
	head := a.holders[f][x]
	if head == s {
		head = s.next[f]
		if head == nil {
			delete(a.holders[f], x)
		} else {
			a.holders[f][x] = head
		}
	} else {
		p := head
		for p.next[f] != s {
			p = p.next[f]
		}
		p.next[f] = s.next[f]
	}
	s.next[f] = nil
	s.clearAddr(f)
	if head == nil && s.sharingKey != "" {
		a.unshare(s.sharingKey, f, x)
	}
	return head == nil
}

// lookup returns the pool an address is assignable from, or, when it is
// in a pool's ranges but is a buggy address the pool avoids, that pool
// as avoidedBy.
func lookup(index []indexEntry, f fam, x u128) (p, avoidedBy *pool) {
	lo, hi := 0, len(index)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if index[m].last.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(index) || x.less(index[lo].first) {
		return nil, nil
	}
	p = index[lo].pool
	if p.spaces[f].avoid && x.buggy() {
		return nil, p
	}
	return p, nil
}

// SetConfig replaces the pools. Assignments whose addresses are still
// assignable are kept (their pool follows the addresses); the others are
// released and returned, sorted by Service, so the caller can assign them
// again and say why. A dual-stack Service of which only one family's
// address is no longer assignable keeps the other (Displaced.Kept) and is
// returned too, as is a Service whose addresses are in another pool now
// (all in Kept), for its caller to record the new pool or, when the
// Service asked for the old one, move it. A nil cfg removes every pool.
//
// Pools are read from cfg.PoolOrder and cfg.Pools. Config guarantees
// that pools do not overlap; should they, an address belongs to the
// first pool in PoolOrder that has it, as with model.Config.PoolFor.
//
// Cost: O(S + A log A + R²) for S Services, A addresses in use and R
// ranges (R² to resolve overlaps, which config rules out).
func (a *Allocator) SetConfig(cfg *model.Config) []Displaced {
	pools, auto, index := buildPools(cfg)

	// Decide, per Service, its new pool or why it goes. A dual-stack
	// Service that loses one family's address keeps the other's, so no
	// other Service can take it before this one is assigned again.
	var out []Displaced
	var gone []*service
	var narrowed []narrowing
	a.services.all(func(s *service) {
		var np *pool
		var lost [nfam]bool
		reason, split := "", false
		for f := range nfam {
			if !s.has(f) {
				continue
			}
			x := s.addr(f)
			q, avoidedBy := lookup(index[f], f, x)
			switch {
			case q == nil && avoidedBy != nil:
				lost[f] = true
				reason = cmp.Or(reason, fmt.Sprintf("%s ends in .0 or .255 and pool %q avoids buggy IPs", x.addr(f), avoidedBy.name))
			case q == nil:
				lost[f] = true
				reason = cmp.Or(reason, fmt.Sprintf("%s is no longer in any pool", x.addr(f)))
			case np != nil && q != np: // f is v6, np came from v4
				reason = fmt.Sprintf("%s is now in pool %q and %s in pool %q: an assignment comes from one pool",
					s.addr(v4).addr(v4), np.name, x.addr(f), q.name)
				split = true
			default:
				np = q
			}
			if split {
				break
			}
		}
		if reason == "" || (np != nil && !split) {
			np.services++
			for f := range nfam {
				if s.has(f) && !lost[f] {
					np.spaces[f].services++
				}
			}
			if reason == "" {
				// Kept whole; returned when its pool is another now.
				if old := a.poolOf(s); old != nil && old.name != np.name {
					out = append(out, Displaced{Service: s.key, Kept: a.assignment(s).IPs, Pool: old.name,
						Reason: fmt.Sprintf("its addresses are in pool %q now", np.name)})
				}
				return
			}
		}
		asg := a.assignment(s) // still the old index
		if np == nil || split {
			gone = append(gone, s)
			out = append(out, Displaced{Service: s.key, IPs: asg.IPs, Pool: asg.Pool, Reason: reason})
			return
		}
		d := Displaced{Service: s.key, Pool: asg.Pool, Reason: reason}
		for _, ip := range asg.IPs {
			if f, _ := addrKey(ip); lost[f] {
				d.IPs = append(d.IPs, ip)
			} else {
				d.Kept = append(d.Kept, ip)
			}
		}
		narrowed = append(narrowed, narrowing{s, lost})
		out = append(out, d)
	})

	for _, s := range gone {
		for f := range nfam {
			if s.has(f) {
				a.unlink(s, f)
			}
		}
		a.services.remove(s)
	}
	for _, n := range narrowed {
		for f := range nfam {
			if n.lost[f] {
				a.unlink(n.s, f)
			}
		}
	}
	a.pools, a.auto, a.index = pools, auto, index
	for f := range nfam {
		for x := range a.holders[f] {
			p, _ := lookup(index[f], f, x)
			sl := p.spaces[f].slotOf(x)
			p.spaces[f].take(&sl)
		}
	}

	slices.SortFunc(out, func(x, y Displaced) int {
		return cmp.Or(strings.Compare(x.Service.Namespace, y.Service.Namespace),
			strings.Compare(x.Service.Name, y.Service.Name))
	})
	return out
}

// buildPools turns cfg into pool states (with empty spaces), the
// autoAssign order and the address index.
func buildPools(cfg *model.Config) (map[string]*pool, []*pool, [nfam][]indexEntry) {
	pools := map[string]*pool{}
	var auto []*pool
	var index [nfam][]indexEntry
	if cfg == nil {
		return pools, auto, index
	}
	var covered [nfam][]span
	for _, name := range cfg.PoolOrder {
		mp := cfg.Pools[name]
		if mp == nil || pools[name] != nil {
			continue
		}
		p := &pool{name: name, cfg: mp}
		var spans [nfam][]span
		for _, r := range mp.Ranges {
			if !r.First.IsValid() || !r.Last.IsValid() {
				continue
			}
			f, first := addrKey(r.First)
			lf, last := addrKey(r.Last)
			if f != lf || last.less(first) {
				continue
			}
			spans[f] = append(spans[f], span{first: first, last: last})
		}
		for f := range nfam {
			own := subtractSpans(normalizeSpans(spans[f]), covered[f])
			covered[f] = normalizeSpans(append(covered[f], own...))
			p.spaces[f] = newSpace(f, mp.AvoidBuggyIPs, own)
			for _, sp := range own {
				index[f] = append(index[f], indexEntry{span: sp, pool: p})
			}
		}
		pools[name] = p
		if mp.AutoAssign {
			auto = append(auto, p)
		}
	}
	for f := range nfam {
		slices.SortFunc(index[f], func(x, y indexEntry) int { return x.first.cmp(y.first) })
	}
	slices.SortStableFunc(auto, compareAuto)
	return pools, auto, index
}

// compareAuto orders autoAssign pools: pools with a serviceAllocation
// first, by priority (0 after every other priority), then the others;
// ties by name.
func compareAuto(x, y *pool) int {
	ax, ay := x.cfg.Allocation, y.cfg.Allocation
	if (ax == nil) != (ay == nil) {
		if ax != nil {
			return -1
		}
		return 1
	}
	if ax != nil && ax.Priority != ay.Priority {
		switch {
		case ax.Priority == 0:
			return 1
		case ay.Priority == 0:
			return -1
		}
		return cmp.Compare(ax.Priority, ay.Priority)
	}
	return strings.Compare(x.name, y.name)
}
