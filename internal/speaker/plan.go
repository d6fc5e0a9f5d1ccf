package speaker

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// Takeover plans: what this node would announce if one other member went.
//
// A pass over 10,000 Services takes tens of milliseconds, and a takeover
// waits for it before the first gratuitous announcement. Once the loop has
// been quiet for planQuiet, it works out in advance, for every other live
// member, the responders' state after that member's departure: the same
// election (L2Desired) on the last pass's snapshot without the member and
// its claims. When the membership then loses exactly that member, and
// nothing else happened since (no pass, no API event: planGen), TakeOver
// hands the responders the plan at once; the pass that follows computes
// the same owners and does the rest (claims, events, status).
//
// A plan can only be stale within a window it cannot see: an API change
// not yet delivered to the cache. The pass right after corrects any
// difference, as it would for a change arriving just after a pass.

// planQuiet is how long the loop must be idle before plans are made (a
// variable for tests).
var planQuiet = time.Second

// maxPlanMembers bounds the work: one election per other member. Larger
// clusters take over through the pass alone.
const maxPlanMembers = 16

// takeoverPlans are the plans made from one snapshot.
type takeoverPlans struct {
	gen   uint64          // planGen when the snapshot was taken
	live  []string        // the live members the plans start from, sorted
	snap  Snapshot        // for the quorum check: its Nodes
	plans map[string]plan // departed member -> this node's responders
}

// plan is the complete responder state after a takeover.
type plan struct {
	state  responderState
	gained int
}

// linksUp reports whether every interface the plan answers on has a
// working link.
func (p plan) linksUp(i Interfaces) bool {
	for _, m := range []map[string][]netip.Addr{p.state.v4, p.state.v6} {
		for name := range m {
			if !i.LinkUp(name) {
				return false
			}
		}
	}
	return true
}

// invalidatePlans voids the plans made so far; every input change calls it.
func (l *L2Loop) invalidatePlans() {
	l.planGen.Add(1)
}

// schedulePlans makes plans from snap once the loop has been quiet for
// planQuiet, unless something changes first. snap was taken at gen.
func (l *L2Loop) schedulePlans(gen uint64, snap Snapshot) {
	if l.Membership == nil || len(snap.Live) < 2 || len(snap.Live) > maxPlanMembers {
		return
	}
	l.planMu.Lock()
	defer l.planMu.Unlock()
	if l.planTimer != nil {
		l.planTimer.Stop()
	}
	l.planTimer = time.AfterFunc(planQuiet, func() {
		if l.planGen.Load() != gen {
			return
		}
		p := l.makePlans(gen, snap)
		l.planMu.Lock()
		l.plans = p
		l.planMu.Unlock()
	})
}

// makePlans elects without each other live member in turn.
func (l *L2Loop) makePlans(gen uint64, snap Snapshot) *takeoverPlans {
	l.mu.Lock()
	owned := maps.Clone(l.owned)
	l.mu.Unlock()
	out := &takeoverPlans{gen: gen, live: slices.Sorted(slices.Values(snap.Live)), snap: snap, plans: map[string]plan{}}
	mine := claimsOf(owned)
	ifc := newIfaceCache(l.Interfaces)
	for _, gone := range out.live {
		if gone == l.NodeName {
			continue
		}
		if l.planGen.Load() != gen {
			return nil
		}
		without := snap
		without.Live = slices.DeleteFunc(slices.Clone(snap.Live), func(n string) bool { return n == gone })
		without.Claims = maps.Clone(snap.Claims)
		delete(without.Claims, gone)
		// This node's claims as the pass just set them: the snapshot
		// was read before.
		without.Claims[l.NodeName] = mine
		p := plan{state: newResponderState()}
		for ip, a := range L2Desired(without) {
			if a.Owner != l.NodeName {
				continue
			}
			if _, had := owned[ip]; !had {
				p.gained++
			}
			p.state.add(ip, ifc.resolve(a.Interfaces))
		}
		if p.gained == 0 {
			continue
		}
		p.state.sort()
		out.plans[gone] = p
	}
	return out
}

// TakeOver gives the responders the plan for the member that just left
// the membership, if there is a valid one: exactly that member is gone,
// nothing else changed since the plan was made, and this node still has
// quorum and is not held. The caller runs the pass next, as for any
// membership change. It reports whether a plan was applied.
func (l *L2Loop) TakeOver() bool {
	if l.Membership == nil {
		return false
	}
	l.planMu.Lock()
	p := l.plans
	l.planMu.Unlock()
	if p == nil || p.gen != l.planGen.Load() {
		return false
	}
	live := l.Membership.Members()
	if len(live) != len(p.live)-1 {
		return false
	}
	gone := ""
	for _, n := range p.live {
		if !slices.Contains(live, n) {
			if gone != "" {
				return false
			}
			gone = n
		}
	}
	pl, ok := p.plans[gone]
	if !ok {
		return false
	}
	if l.Hold != nil && (l.Hold.Held() != 0 || !l.Hold.Gate(true)) {
		// Held, or this process just stood still (the gate finds its
		// clock late): what it saw go may be its own stall.
		return false
	}
	if !l.quorum(Snapshot{Live: live, Known: l.Membership.Known(), Nodes: p.snap.Nodes}) {
		return false
	}
	if !pl.linksUp(l.Interfaces) {
		// Cut off, maybe: the pass decides address by address.
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.gen != l.planGen.Load() {
		return false
	}
	start := time.Now()
	errARP := l.ARP.Reconcile(pl.state.v4)
	errNDP := l.NDP.Reconcile(pl.state.v6)
	l.planMu.Lock()
	l.plans = nil
	l.planMu.Unlock()
	l.Log.Info("taking over ahead of the pass", "from", gone, "addresses", pl.gained, "took", time.Since(start).String())
	if errARP != nil || errNDP != nil {
		l.Log.Info("taking over ahead of the pass failed; the pass will retry", "arp", errARP, "ndp", errNDP)
	}
	return true
}
