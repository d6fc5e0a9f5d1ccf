package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/herald-lb/herald/internal/model"
)

// request is a validated model.Request with addresses in integer form.
type request struct {
	key            model.ServiceKey
	svcLabels      map[string]string
	nsLabels       map[string]string
	pool           string
	current        []netip.Addr
	policy         model.FamilyPolicy
	explicitFamily bool   // Families was given
	order          [2]fam // primary family first
	ips            [nfam]u128
	hasIP          [nfam]bool
	nIPs           int
	sharingKey     string
	ports          []model.Port // sorted, deduplicated; nil without sharingKey
	local          bool
	selector       string
}

// pick is a decided but not yet committed allocation.
type pick struct {
	p    *pool
	fams [2]fam // primary first
	n    int
	t    [nfam]target // t[f]: where family f goes
}

func newRequest(req *model.Request) (request, error) {
	nr := request{
		key:        req.Service,
		svcLabels:  req.ServiceLabels,
		nsLabels:   req.NamespaceLabels,
		pool:       req.Pool,
		current:    req.Current,
		policy:     req.Policy,
		sharingKey: req.SharingKey,
		local:      req.Local,
		selector:   req.Selector,
		order:      [2]fam{v4, v6},
	}
	if req.Policy > model.RequireDualStack {
		return nr, errorf(ErrFamily, "unknown ipFamilyPolicy %d", req.Policy)
	}
	if len(req.Families) > 2 {
		return nr, errorf(ErrFamily, "%d ipFamilies given, at most 2 are possible", len(req.Families))
	}
	for _, f := range req.Families {
		if f != model.IPv4 && f != model.IPv6 {
			return nr, errorf(ErrFamily, "unknown IP family %d", f)
		}
	}
	if len(req.Families) == 2 && req.Families[0] == req.Families[1] {
		return nr, errorf(ErrFamily, "ipFamilies lists %s twice", req.Families[0])
	}
	if len(req.Families) > 0 {
		nr.explicitFamily = true
		p := famOf(req.Families[0])
		nr.order = [2]fam{p, p.other()}
	}

	for _, ip := range req.IPs {
		if !ip.IsValid() {
			return nr, errorf(ErrNotInPool, "an invalid address was requested")
		}
		f, x := addrKey(ip)
		if nr.hasIP[f] {
			return nr, errorf(ErrFamily, "two %s addresses requested (%s and %s), at most one per family is possible",
				f, nr.ips[f].addr(f), x.addr(f))
		}
		nr.ips[f], nr.hasIP[f] = x, true
		nr.nIPs++
	}
	switch req.Policy {
	case model.SingleStack:
		if nr.nIPs == 2 {
			return nr, errorf(ErrFamily, "two IPs requested for a SingleStack Service")
		}
		if nr.nIPs == 1 && nr.explicitFamily && !nr.hasIP[nr.order[0]] {
			f := nr.order[0].other()
			return nr, errorf(ErrFamily, "%s requested for a SingleStack %s Service", nr.ips[f].addr(f), nr.order[0])
		}
	case model.RequireDualStack:
		if nr.nIPs == 1 {
			return nr, errorf(ErrFamily, "one IP requested for a RequireDualStack Service, which needs one per family")
		}
	case model.PreferDualStack:
		// The API server lists one family for a PreferDualStack Service
		// in a single-stack cluster: an address of the other family would
		// not be served (kube-proxy serves the Service's families), so
		// the Service is single-stack for the allocator.
		if len(req.Families) != 1 {
			break
		}
		if nr.nIPs == 2 || (nr.nIPs == 1 && !nr.hasIP[nr.order[0]]) {
			f := nr.order[0].other()
			return nr, errorf(ErrFamily, "%s requested, but the Service has only %s (spec.ipFamilies)", nr.ips[f].addr(f), nr.order[0])
		}
		nr.policy = model.SingleStack
	}
	if req.SharingKey != "" {
		nr.ports = normalizePorts(req.Ports)
	}
	return nr, nil
}

func comparePorts(x, y model.Port) int {
	if x.Protocol != y.Protocol {
		return int(x.Protocol) - int(y.Protocol)
	}
	return int(x.Port) - int(y.Port)
}

// normalizePorts returns ps sorted and deduplicated; ps itself when it
// already is (the caller's slice: clone before keeping it).
func normalizePorts(ps []model.Port) []model.Port {
	sorted := true
	for i := 1; i < len(ps); i++ {
		if comparePorts(ps[i-1], ps[i]) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return ps
	}
	out := slices.Clone(ps)
	slices.SortFunc(out, comparePorts)
	return slices.Compact(out)
}

// families returns the families to allocate in p, primary first.
func (nr *request) families(p *pool) (fams [2]fam, n int, err error) {
	if nr.nIPs > 0 {
		for _, f := range nr.order {
			if nr.hasIP[f] {
				fams[n] = f
				n++
			}
		}
		return fams, n, nil
	}
	switch nr.policy {
	case model.SingleStack:
		f := nr.order[0]
		if !nr.explicitFamily && !p.spaces[v4].has() {
			f = v6
		}
		if !p.spaces[f].has() {
			return fams, 0, errorf(ErrFamily, "pool %q has no %s addresses", p.name, f)
		}
		return [2]fam{f}, 1, nil
	case model.PreferDualStack:
		for _, f := range nr.order {
			if p.spaces[f].has() {
				fams[n] = f
				n++
			}
		}
		if n == 0 {
			return fams, 0, errorf(ErrFamily, "pool %q has no addresses", p.name)
		}
		return fams, n, nil
	default: // RequireDualStack
		for _, f := range nr.order {
			if !p.spaces[f].has() {
				return fams, 0, errorf(ErrFamily, "RequireDualStack but pool %q has no %s addresses", p.name, f)
			}
		}
		return nr.order, 2, nil
	}
}

// allowed reports whether p's serviceAllocation serves the Service.
func (nr *request) allowed(p *pool) bool {
	return p.cfg.Allocation.Allows(nr.key.Namespace, nr.nsLabels, nr.svcLabels)
}

// notAllowedReason says why p does not serve the Service.
func (nr *request) notAllowedReason(p *pool) string {
	al := p.cfg.Allocation
	ns := model.ServiceAllocation{Namespaces: al.Namespaces, NamespaceSelectors: al.NamespaceSelectors}
	if !ns.Allows(nr.key.Namespace, nr.nsLabels, nil) {
		return fmt.Sprintf("pool %q does not serve namespace %q", p.name, nr.key.Namespace)
	}
	return fmt.Sprintf("pool %q does not serve Service %s: its labels match none of the pool's serviceSelectors", p.name, nr.key)
}

// mayAllocate reports whether new addresses for the Service may come
// from p.
func (nr *request) mayAllocate(p *pool) bool {
	if nr.pool == "" && !p.cfg.AutoAssign {
		return false
	}
	return nr.allowed(p)
}

// Assign gives req.Service addresses satisfying req, keeping what it
// already holds whenever that still satisfies req (see the package
// documentation for the rules). After Assign the Service holds exactly
// the returned assignment; on error it holds nothing, its previous
// addresses released.
//
// Cost: O(log A + log R) for A addresses in use in the pool tried and R
// ranges, per pool tried; a Service with a sharing key also checks the
// addresses held under that key (O(K·H·P) for K such addresses, H holders
// each, P ports).
func (a *Allocator) Assign(req model.Request) (model.Assignment, error) {
	old, pl := a.services.find(req.Service)
	nr, err := newRequest(&req)
	if err == nil {
		if s := a.keep(&nr, old, pl); s != nil {
			return a.assignment(s), nil
		}
	}
	if old != nil {
		a.release(old)
		_, pl = a.services.find(req.Service)
	}
	if err != nil {
		return model.Assignment{}, err
	}
	pk, err := a.choose(&nr)
	if err != nil {
		return model.Assignment{}, err
	}
	s := a.newService(nr.key)
	a.setSharing(s, &nr)
	a.services.add(s, pl)
	pk.p.services++
	for _, f := range pk.fams[:pk.n] {
		a.hold(s, pk.p, f, &pk.t[f])
	}
	s.setFlag(v6First, pk.fams[0] == v6)
	return a.assignment(s), nil
}

// keep tries to satisfy nr with what the Service holds (old) or, when
// the allocator has no record of it, with nr.current (the record then
// goes at pl). It returns the Service's record when it did so; when it
// did not, it changed nothing.
func (a *Allocator) keep(nr *request, old *service, pl place) *service {
	var cand [nfam]u128
	var hasCand [nfam]bool
	var oldPool *pool
	if old != nil {
		oldPool = a.poolOf(old)
		for f := range nfam {
			cand[f], hasCand[f] = old.addr(f), old.has(f)
		}
	} else {
		for _, ip := range nr.current {
			if !ip.IsValid() {
				continue
			}
			if f, x := addrKey(ip); !hasCand[f] {
				cand[f], hasCand[f] = x, true
			}
		}
	}
	if !hasCand[v4] && !hasCand[v6] {
		return nil
	}
	if nr.nIPs > 0 {
		for f := range nfam {
			if hasCand[f] != nr.hasIP[f] || (hasCand[f] && cand[f] != nr.ips[f]) {
				return nil
			}
		}
	}

	// ok[f]: the candidate of family f may be kept, in pool p.
	var p *pool
	var ok [nfam]bool
	for _, f := range nr.order {
		if !hasCand[f] {
			continue
		}
		q := oldPool
		if old == nil {
			if q, _ = lookup(a.index[f], f, cand[f]); q == nil {
				continue
			}
		}
		if (p != nil && q != p) || (nr.pool != "" && q.name != nr.pool) {
			continue
		}
		if h, _, _ := a.clash(f, cand[f], nr, old); h != nil {
			continue
		}
		p, ok[f] = q, true
	}
	if p == nil {
		return nil
	}

	// The families the result must have.
	var fams [2]fam
	n := 0
	switch {
	case nr.nIPs > 0: // the candidates are exactly the requested addresses
		fams, n, _ = nr.families(p)
		for _, f := range fams[:n] {
			if !ok[f] {
				return nil
			}
		}
	case nr.policy == model.SingleStack:
		f := nr.order[0]
		if !nr.explicitFamily && !ok[f] {
			f = f.other()
		}
		fams[0], n = f, 1
	default:
		for _, f := range nr.order {
			if p.spaces[f].has() {
				fams[n] = f
				n++
			}
		}
		if nr.policy == model.RequireDualStack && n < 2 {
			return nil
		}
	}

	// Keep what may be kept, find the missing families in p.
	var out [2]fam
	no, kept := 0, 0
	var picked [nfam]bool
	var ts [nfam]target
	for _, f := range fams[:n] {
		if ok[f] {
			out[no] = f
			no++
			kept++
			continue
		}
		found := false
		if nr.mayAllocate(p) {
			ts[f], found = a.findAddr(p, f, nr, old)
		}
		if !found {
			if nr.policy == model.PreferDualStack {
				continue
			}
			return nil
		}
		picked[f] = true
		out[no] = f
		no++
	}
	if kept == 0 {
		return nil
	}
	var inOut [nfam]bool
	for _, f := range out[:no] {
		inOut[f] = true
	}

	// Commit.
	s := old
	if s == nil {
		s = a.newService(nr.key)
		a.setSharing(s, nr)
		a.services.add(s, pl)
		p.services++
		for _, f := range out[:no] {
			if ok[f] {
				a.hold(s, p, f, &target{at: slot{x: cand[f]}})
			}
		}
	} else {
		for f := range nfam {
			if s.has(f) && !(ok[f] && inOut[f]) {
				a.unhold(s, p, f)
			}
		}
		a.updateSharing(s, nr)
	}
	for _, f := range out[:no] {
		if picked[f] {
			// Dropping addresses above may have changed the space since
			// findAddr: look the slot and holders up again.
			a.hold(s, p, f, &target{at: slot{x: ts[f].at.x}})
		}
	}
	s.setFlag(v6First, out[0] == v6)
	return s
}

// setSharing records nr's sharing data in s, which holds nothing yet.
func (a *Allocator) setSharing(s *service, nr *request) {
	s.sharingKey, s.selector = nr.sharingKey, nr.selector
	s.setFlag(isLocal, nr.local)
	s.ports = makePortSet(nr.ports)
}

// updateSharing records nr's sharing data in s, which may hold
// addresses. When the key changes s is the only holder of its addresses
// (another holder would have the old key and clash), so they move to the
// new key in the index.
func (a *Allocator) updateSharing(s *service, nr *request) {
	if s.sharingKey != nr.sharingKey {
		for f := range nfam {
			if !s.has(f) {
				continue
			}
			if s.sharingKey != "" {
				a.unshare(s.sharingKey, f, s.addr(f))
			}
			if nr.sharingKey != "" {
				a.share(nr.sharingKey, f, s.addr(f))
			}
		}
		s.sharingKey = nr.sharingKey
	}
	s.selector = nr.selector
	s.setFlag(isLocal, nr.local)
	if !s.ports.equal(nr.ports) {
		s.ports = makePortSet(nr.ports)
	}
}

// choose decides a fresh allocation for nr (which holds nothing).
func (a *Allocator) choose(nr *request) (pick, error) {
	if nr.pool != "" && a.pools[nr.pool] == nil {
		return pick{}, errorf(ErrUnknownPool, "pool %q does not exist", nr.pool)
	}
	if nr.nIPs > 0 {
		return a.chooseIPs(nr)
	}
	if nr.pool != "" {
		p := a.pools[nr.pool]
		if !nr.allowed(p) {
			return pick{}, errorf(ErrPoolNotAllowed, "%s", nr.notAllowedReason(p))
		}
		return a.fill(p, nr)
	}

	var errs []error
	skipped := 0
	for _, p := range a.auto {
		if !nr.allowed(p) {
			skipped++
			continue
		}
		pk, err := a.fill(p, nr)
		if err == nil {
			return pk, nil
		}
		errs = append(errs, err)
	}
	switch {
	case len(a.pools) == 0:
		return pick{}, errorf(ErrNoPool, "no pool serves %s: no pools are configured", nr.key)
	case len(a.auto) == 0:
		return pick{}, errorf(ErrNoPool, "no pool serves %s: no pool has autoAssign enabled", nr.key)
	case len(errs) == 1 && skipped == 0:
		return pick{}, errs[0]
	}
	var reasons []string
	kind := ErrNoPool
	for _, err := range errs {
		reasons = append(reasons, err.Error())
		switch {
		case errors.Is(err, ErrPoolExhausted):
			kind = ErrPoolExhausted
		case kind == ErrNoPool:
			kind = ErrFamily
		}
	}
	for _, p := range a.auto {
		if !nr.allowed(p) {
			reasons = append(reasons, nr.notAllowedReason(p))
		}
	}
	if len(errs) == 0 {
		return pick{}, errorf(ErrNoPool, "no pool serves %s: %s", nr.key, strings.Join(reasons, "; "))
	}
	return pick{}, errorf(kind, "no pool could serve %s: %s", nr.key, strings.Join(reasons, "; "))
}

// chooseIPs decides an allocation of the requested addresses.
func (a *Allocator) chooseIPs(nr *request) (pick, error) {
	var p *pool
	var pf fam
	for _, f := range nr.order {
		if !nr.hasIP[f] {
			continue
		}
		ip := nr.ips[f].addr(f)
		q, avoidedBy := lookup(a.index[f], f, nr.ips[f])
		switch {
		case q == nil && avoidedBy != nil:
			return pick{}, errorf(ErrNotInPool, "%s ends in .0 or .255, which pool %q avoids", ip, avoidedBy.name)
		case q == nil:
			return pick{}, errorf(ErrNotInPool, "%s is not in any pool", ip)
		case p != nil && q != p:
			return pick{}, errorf(ErrFamily, "requested IPs are in different pools: %s in %q, %s in %q",
				nr.ips[pf].addr(pf), p.name, ip, q.name)
		}
		p, pf = q, f
	}
	if nr.pool != "" && p.name != nr.pool {
		return pick{}, errorf(ErrNotInPool, "%s is in pool %q, not in the requested pool %q", nr.ips[pf].addr(pf), p.name, nr.pool)
	}
	if !nr.allowed(p) {
		return pick{}, errorf(ErrPoolNotAllowed, "%s", nr.notAllowedReason(p))
	}
	pk := pick{p: p}
	pk.fams, pk.n, _ = nr.families(p)
	for _, f := range pk.fams[:pk.n] {
		if h, why, port := a.clash(f, nr.ips[f], nr, nil); h != nil {
			return pick{}, errorf(ErrIPInUse, "%s", clashMessage(nr.ips[f].addr(f), h, why, port))
		}
		pk.t[f].at.x = nr.ips[f]
	}
	return pk, nil
}

// fill decides an allocation of every wanted family in p.
func (a *Allocator) fill(p *pool, nr *request) (pick, error) {
	fams, n, err := nr.families(p)
	if err != nil {
		return pick{}, err
	}
	pk := pick{p: p, fams: fams, n: n}
	for _, f := range fams[:n] {
		var ok bool
		if pk.t[f], ok = a.findAddr(p, f, nr, nil); !ok {
			return pick{}, errorf(ErrPoolExhausted, "no free %s address in pool %q", f, p.name)
		}
	}
	return pk, nil
}

// findAddr returns the address of family f in p the Service should get:
// the lowest address already held under its sharing key that it may
// share, else the lowest free address.
func (a *Allocator) findAddr(p *pool, f fam, nr *request, self *service) (target, bool) {
	if nr.sharingKey != "" {
		var best target
		found := false
		e, ok := a.shared[nr.sharingKey]
		for i := 0; ok && i < e.len(); i++ {
			k := e.at(i)
			if k.f != f || (found && !k.a.less(best.at.x)) {
				continue
			}
			if q, _ := lookup(a.index[f], f, k.a); q != p {
				continue
			}
			head := a.holders[f][k.a]
			if !joinable(head, f, nr, self) {
				continue
			}
			best, found = target{at: slot{x: k.a}, head: head}, true
		}
		if found {
			return best, true
		}
	}
	at, ok := p.spaces[f].lowestFree()
	return target{at: at, free: true}, ok
}
