package speaker

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/herald-lb/herald/internal/model"
)

// BGPInput is what the BGP computation reads: the cluster as this node
// sees it.
type BGPInput struct {
	Config    *model.Config
	Services  []Service
	Nodes     map[string]Node
	Endpoints map[model.ServiceKey]map[string]bool
	// NodeName is this node.
	NodeName string
	// NodeAddrs are this node's own addresses (its Node's InternalIPs);
	// the first of each family is the next hop of that family's routes.
	NodeAddrs []netip.Addr
}

// BGPDesired is what this node must do over BGP: its sessions and, per
// session, the routes it sends.
type BGPDesired struct {
	// RouterID is the BGP identifier; invalid when none can be chosen (no
	// peer sets one and the node has no address).
	RouterID netip.Addr
	// Sessions are this node's peers, sorted by peer name.
	Sessions []BGPSession
	// Services says, per Service announced, which prefixes go to which
	// peers (for ServiceBGPStatus).
	Services map[model.ServiceKey]BGPServiceRoutes
	// Problems are parts of the configuration this node cannot act on,
	// for the log: each says what is ignored and why.
	Problems []string
}

// BGPSession is one peer and what it is sent.
type BGPSession struct {
	Peer *model.Peer
	// Routes are sorted by prefix; a prefix appears once.
	Routes []BGPRoute
}

// BGPRoute is one prefix sent to one peer with its attributes.
type BGPRoute struct {
	Prefix netip.Prefix
	// NextHop is the node's own address of the prefix's family (the
	// peer's sourceAddress when it is of that family); invalid means the
	// session's local address, which only happens when the session is of
	// the prefix's family.
	NextHop netip.Addr
	// Communities are sorted and deduplicated, standard before large.
	Communities []model.Community
	// LocalPref is set for iBGP peers only; 0 means none.
	LocalPref uint32
}

// BGPServiceRoutes is what one Service is announced as from this node.
type BGPServiceRoutes struct {
	Prefixes []netip.Prefix // sorted, distinct
	Peers    []string       // BGPPeer names, sorted, distinct
}

// ComputeBGP returns this node's desired BGP state. Every eligible node
// announces (there is no election: the routers spread traffic with ECMP).
// A Service IP is announced from this node when the node is not excluded
// from load balancers, its network is available, a BGPAdvertisement
// covering the IP's pool selects the node, and, for
// externalTrafficPolicy: Local, the node holds a ready endpoint. The
// advertisement's aggregation length decides the prefix, its peers (all
// when empty) who receives it, its communities and localPref (iBGP only)
// the attributes. Prefixes announced through several advertisements or
// Services to one peer carry the union of their communities and the
// highest localPref.
func ComputeBGP(in BGPInput) BGPDesired {
	out := BGPDesired{Services: map[model.ServiceKey]BGPServiceRoutes{}}
	if in.Config == nil || len(in.Config.Peers) == 0 {
		return out // no BGP: the input has nothing else (BGPLoop.input)
	}
	node, known := in.Nodes[in.NodeName]
	if !known {
		out.Problems = append(out.Problems, fmt.Sprintf("no Node object %q: peering only with peers without nodeSelectors, announcing nothing", in.NodeName))
	}

	byAddr := map[netip.Addr]string{}
	for _, p := range in.Config.Peers { // sorted by name
		if !model.AnySelects(p.NodeSelectors, node.Labels) {
			continue
		}
		if other, dup := byAddr[p.Addr]; dup {
			out.Problems = append(out.Problems, fmt.Sprintf("BGPPeer %q ignored on this node: BGPPeer %q has the same address %s and also selects it", p.Name, other, p.Addr))
			continue
		}
		byAddr[p.Addr] = p.Name
		out.Sessions = append(out.Sessions, BGPSession{Peer: p})
	}
	out.RouterID = routerID(in, out.Sessions, &out.Problems)

	if !known || node.Excluded() || node.NetworkUnavailable || len(out.Sessions) == 0 {
		return out
	}

	type routeKey struct {
		session int
		prefix  netip.Prefix
	}
	routes := make(map[routeKey]*BGPRoute, len(in.Services)*len(out.Sessions))
	noNextHop := map[string]bool{}
	for _, svc := range in.Services {
		if svc.Local && !in.Endpoints[svc.Key][in.NodeName] {
			continue
		}
		for _, ip := range svc.IPs {
			pool := in.Config.PoolFor(ip)
			if pool == nil {
				continue
			}
			fam := model.FamilyOf(ip)
			for _, adv := range in.Config.BGPAdvs {
				if _, ok := slices.BinarySearch(adv.Pools, pool.Name); !ok || !model.AnySelects(adv.NodeSelectors, node.Labels) {
					continue
				}
				length := adv.AggregationLength
				if fam == model.IPv6 {
					length = adv.AggregationLengthV6
				}
				prefix := netip.PrefixFrom(ip, length).Masked()
				for i, s := range out.Sessions {
					if len(adv.Peers) > 0 && !slices.Contains(adv.Peers, s.Peer.Name) {
						continue
					}
					nh := nextHop(in.NodeAddrs, s.Peer, fam)
					if !nh.IsValid() && model.FamilyOf(s.Peer.Addr) != fam {
						noNextHop[fmt.Sprintf("this node has no %s address: %s prefixes are not sent to BGPPeer %q (%s)", fam, fam, s.Peer.Name, s.Peer.Addr)] = true
						continue
					}
					k := routeKey{i, prefix}
					r := routes[k]
					if r == nil {
						r = &BGPRoute{Prefix: prefix, NextHop: nh}
						routes[k] = r
					}
					r.Communities = append(r.Communities, adv.Communities...)
					if s.Peer.IBGP() {
						r.LocalPref = max(r.LocalPref, adv.LocalPref)
					}
					sr := out.Services[svc.Key]
					sr.Prefixes = append(sr.Prefixes, prefix)
					sr.Peers = append(sr.Peers, s.Peer.Name)
					out.Services[svc.Key] = sr
				}
			}
		}
	}

	for k, r := range routes {
		slices.SortFunc(r.Communities, compareCommunity)
		r.Communities = slices.Compact(r.Communities)
		if len(r.Communities) == 0 {
			r.Communities = nil
		}
		out.Sessions[k.session].Routes = append(out.Sessions[k.session].Routes, *r)
	}
	for i := range out.Sessions {
		slices.SortFunc(out.Sessions[i].Routes, func(a, b BGPRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	}
	for k, sr := range out.Services {
		slices.SortFunc(sr.Prefixes, comparePrefix)
		sr.Prefixes = slices.Compact(sr.Prefixes)
		sort.Strings(sr.Peers)
		sr.Peers = slices.Compact(sr.Peers)
		out.Services[k] = sr
	}
	for msg := range noNextHop {
		out.Problems = append(out.Problems, msg)
	}
	sort.Strings(out.Problems)
	return out
}

// nextHop returns the next hop of a route of family fam sent to peer p:
// the peer's source address when it is of that family, else the node's
// first address of that family, else invalid.
func nextHop(nodeAddrs []netip.Addr, p *model.Peer, fam model.Family) netip.Addr {
	if p.SrcAddr.IsValid() && model.FamilyOf(p.SrcAddr) == fam {
		return p.SrcAddr
	}
	for _, a := range nodeAddrs {
		if model.FamilyOf(a) == fam {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// routerID is the router ID of the first peer (by name) that sets one,
// else the node's first IPv4 address, else one made from the last four
// bytes of its first IPv6 address. A BGP speaker has one router ID, so
// peers asking for others are reported.
func routerID(in BGPInput, sessions []BGPSession, problems *[]string) netip.Addr {
	var id netip.Addr
	var from string
	for _, s := range sessions {
		rid := s.Peer.RouterID
		switch {
		case !rid.IsValid():
		case !id.IsValid():
			id, from = rid, s.Peer.Name
		case rid != id:
			*problems = append(*problems, fmt.Sprintf("BGPPeer %q asks for router ID %s, but this node uses %s from BGPPeer %q (one router ID per node)", s.Peer.Name, rid, id, from))
		}
	}
	if id.IsValid() {
		return id
	}
	for _, a := range in.NodeAddrs {
		if a.Unmap().Is4() {
			return a.Unmap()
		}
	}
	for _, a := range in.NodeAddrs {
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:]))
		if v4.IsUnspecified() {
			v4 = netip.AddrFrom4([4]byte{0, 0, 0, 1})
		}
		return v4
	}
	return netip.Addr{}
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// compareCommunity orders standard communities before large ones, each
// by value (the order package config sorts them in).
func compareCommunity(a, b model.Community) int {
	if a.Large != b.Large {
		if a.Large {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.Value, b.Value), cmp.Compare(a.Global, b.Global),
		cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
}
