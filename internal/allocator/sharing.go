package allocator

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/herald-lb/herald/internal/model"
)

// keyedAddr is an address of the sharing index.
type keyedAddr struct {
	a u128
	f fam
}

// keyAddrs are the addresses held under one sharing key, the first one
// inline: most keys have one address, and reading it then costs no
// extra memory access.
type keyAddrs struct {
	first keyedAddr
	more  []keyedAddr
}

func (e *keyAddrs) len() int { return 1 + len(e.more) }

func (e *keyAddrs) at(i int) keyedAddr {
	if i == 0 {
		return e.first
	}
	return e.more[i-1]
}

// share adds x to the addresses held under key.
func (a *Allocator) share(key string, f fam, x u128) {
	k := keyedAddr{a: x, f: f}
	if e, ok := a.shared[key]; ok {
		e.more = append(e.more, k)
		a.shared[key] = e
	} else {
		a.shared[key] = keyAddrs{first: k}
	}
}

// unshare removes x from the addresses held under key.
func (a *Allocator) unshare(key string, f fam, x u128) {
	k := keyedAddr{a: x, f: f}
	e := a.shared[key]
	switch {
	case e.first == k && len(e.more) == 0:
		delete(a.shared, key)
		return
	case e.first == k:
		e.first = e.more[len(e.more)-1]
		e.more = e.more[:len(e.more)-1]
	default:
		i := slices.Index(e.more, k)
		e.more[i] = e.more[len(e.more)-1]
		e.more = e.more[:len(e.more)-1]
	}
	if len(e.more) == 0 {
		e.more = nil
	}
	a.shared[key] = e
}

// clashKind says why a Service may not share an address.
type clashKind uint8

const (
	noClash clashKind = iota
	holderHasNoKey
	requestHasNoKey
	keysDiffer
	trafficPolicyDiffers
	selectorsDiffer
	portInUse
)

// clash checks whether the Service described by nr may hold x next to
// its current holders (self, the Service's own record, is skipped). It
// returns the first holder it clashes with, or nil.
//
// Several Services may hold one address only if they all have the same
// non-empty sharing key, the same externalTrafficPolicy, the same pod
// selector when Local, and no (protocol, port) in common.
func (a *Allocator) clash(f fam, x u128, nr *request, self *service) (*service, clashKind, model.Port) {
	for h := a.holders[f][x]; h != nil; h = h.next[f] {
		if h == self {
			continue
		}
		if why, port := incompatible(h, nr); why != noClash {
			return h, why, port
		}
	}
	return nil, noClash, model.Port{}
}

// joinable reports whether nr may join the holders listed from head,
// which hold the address under nr's sharing key (the sharing index says
// so): only the traffic policy, selector and ports are compared.
func joinable(head *service, f fam, nr *request, self *service) bool {
	for h := head; h != nil; h = h.next[f] {
		if h == self {
			continue
		}
		if h.local() != nr.local || nr.local && h.selector != nr.selector {
			return false
		}
		if _, clash := h.ports.common(nr.ports); clash {
			return false
		}
	}
	return true
}

func incompatible(h *service, nr *request) (clashKind, model.Port) {
	switch {
	case h.sharingKey == "":
		return holderHasNoKey, model.Port{}
	case nr.sharingKey == "":
		return requestHasNoKey, model.Port{}
	case h.sharingKey != nr.sharingKey:
		return keysDiffer, model.Port{}
	case h.local() != nr.local:
		return trafficPolicyDiffers, model.Port{}
	case h.local() && h.selector != nr.selector:
		return selectorsDiffer, model.Port{}
	}
	if p, ok := h.ports.common(nr.ports); ok {
		return portInUse, p
	}
	return noClash, model.Port{}
}

func clashMessage(ip netip.Addr, h *service, why clashKind, port model.Port) string {
	var detail string
	switch why {
	case portInUse:
		return fmt.Sprintf("%s cannot be shared: port %s/%d is already used on it by %s", ip, protocolName(port.Protocol), port.Port, h.key)
	case holderHasNoKey:
		detail = h.key.String() + " has no sharing key"
	case requestHasNoKey:
		detail = "this Service has no sharing key"
	case keysDiffer:
		detail = "sharing keys differ"
	case trafficPolicyDiffers:
		detail = "externalTrafficPolicy differs"
	case selectorsDiffer:
		detail = "pod selectors differ"
	}
	return fmt.Sprintf("%s is in use by %s and cannot be shared: %s", ip, h.key, detail)
}

func protocolName(p model.Protocol) string {
	switch p {
	case model.TCP:
		return "TCP"
	case model.UDP:
		return "UDP"
	case model.SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("protocol(%d)", p)
}
