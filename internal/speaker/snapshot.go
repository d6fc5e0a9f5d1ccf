package speaker

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/election"
	"github.com/herald-lb/herald/internal/model"
)

// Service is what the speaker needs to know of a LoadBalancer Service that
// Herald handles.
type Service struct {
	Key model.ServiceKey
	// IPs are the addresses in status.loadBalancer.ingress.
	IPs []netip.Addr
	// Local is externalTrafficPolicy: Local.
	Local bool
}

// Node is what the speaker needs to know of a Node.
type Node struct {
	Name   string
	Labels map[string]string
	// Ready is the Node's Ready condition (used as liveness when memberlist
	// is off).
	Ready bool
	// NetworkUnavailable is the NetworkUnavailable condition.
	NetworkUnavailable bool
	// Leaving is set while the node is on its way out: being deleted, or
	// tainted ToBeDeletedByClusterAutoscaler.
	Leaving bool
	// Cordoned is the Node's spec.unschedulable (kubectl cordon, drain).
	Cordoned bool
	// IgnoreExcludeLabel: the speakers ignore the exclude-from-external-
	// load-balancers label (--ignore-exclude-lb; kubeadm puts it on
	// control-plane nodes, which may be the only ones).
	IgnoreExcludeLabel bool
}

// KeepsRoutesOnShutdown reports whether a speaker stopping on the node
// (its Node; nil when gone) leaves its BGP sessions with graceful restart
// for the process's exit to close, so that the routers keep its routes
// while it restarts (a rolling update): yes, unless the node is leaving
// or cordoned, on its way to maintenance, when its routes must go at
// once.
func KeepsRoutesOnShutdown(n *Node) bool {
	return n != nil && !n.Leaving && !n.Cordoned
}

// Excluded reports whether the node is out of external load balancing:
// it carries the label that removes it from external load balancers (and
// the speakers do not ignore it), or
// it is leaving (its addresses move to other nodes while it still runs,
// instead of when it is gone).
func (n Node) Excluded() bool {
	_, ok := n.Labels[labelExcludeFromLB]
	return (ok && !n.IgnoreExcludeLabel) || n.Leaving
}

const labelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// Snapshot is everything the election needs, as one consistent value.
type Snapshot struct {
	Config   *model.Config
	Services []Service
	Nodes    map[string]Node
	// Endpoints maps a Service to the nodes holding a ready endpoint of it.
	Endpoints map[model.ServiceKey]map[string]bool
	// Live are the live speakers' nodes (memberlist members). Nil means
	// memberlist is off: Ready nodes count as live.
	Live []string
	// Known are the members seen alive since this speaker started, less
	// those that left gracefully (for the quorum guard).
	Known []string
	// Claims are the live members' current claims (see election).
	Claims map[string][]election.Claim
	// NoLink lists, per node, the interface sets (LinkSetName) on which
	// it has no working link: it is no candidate for the addresses it
	// would answer on them.
	NoLink map[string][]string
}

// noLinkFor reports whether the interface set a node (with labels and
// its sets without link) answers on for advs has no link.
func noLinkFor(sets []string, advs []*model.L2Advertisement, labels map[string]string) bool {
	return len(sets) > 0 && (slices.Contains(sets, NoConfigSet) || slices.Contains(sets, LinkSetName(interfacesFor(advs, labels))))
}

// NoConfigSet is what a speaker without a valid configuration (started
// while the configuration is wrong) gives as its sets without link: it
// answers for nothing, so the others leave it out of every pool's
// candidates. No set has this name: interface names hold no space.
const NoConfigSet = " no configuration"

// LinkSetName names an interface set: the names separated by spaces
// (which no interface name holds: the configuration refuses them); ""
// for the default set (nil). The members tell each other by these names
// which sets have no link, and a pass caches per set by them.
func LinkSetName(spec []string) string { return strings.Join(spec, " ") }

// OwnNoLink returns the interface sets, by LinkSetName and sorted, that
// node (with labels) would answer on for some pool of cfg and on which
// linkUp says there is no working link.
func OwnNoLink(cfg *model.Config, labels map[string]string, linkUp func([]string) bool) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	for _, name := range cfg.PoolOrder {
		advs := l2AdvsFor(cfg, name)
		if !anyAdvSelects(advs, labels) {
			continue
		}
		spec := interfacesFor(advs, labels)
		if !linkUp(spec) {
			out = append(out, LinkSetName(spec))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// L2Announcement is one IP announced over layer 2.
type L2Announcement struct {
	IP    netip.Addr
	Owner string
	// Services holding the IP, sorted.
	Services []model.ServiceKey
	// Pool the IP belongs to.
	Pool string
	// Interfaces to answer on, for the owner; nil means its default
	// interfaces. Shared between announcements: read only.
	Interfaces []string
}

// L2Desired elects an owner for every layer-2 IP of the snapshot and
// returns them by IP. IPs without any candidate are absent.
//
// Cost: O(S + P·N + I log I) for S Services, P pools, N nodes and I IPs.
// Candidates depend on the pool (its advertisements' node selectors) and,
// for externalTrafficPolicy: Local, on the Service's endpoints; the
// candidate list of a pool is built once and shared by every Cluster
// Service of the pool (which also lets the election resolve it once), so
// 10,000 Services cost no per-Service map.
func L2Desired(s Snapshot) map[netip.Addr]L2Announcement {
	if s.Config == nil {
		return nil
	}
	live := map[string]bool{}
	if s.Live != nil {
		for _, n := range s.Live {
			live[n] = true
		}
	} else {
		for name, n := range s.Nodes {
			if n.Ready {
				live[name] = true
			}
		}
	}
	names := make([]string, 0, len(s.Nodes))
	for name := range s.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)

	// Per pool: its advertisements and its candidates (sorted), nil
	// advs for a pool no L2Advertisement covers.
	type poolInfo struct {
		advs  []*model.L2Advertisement
		cands []string
	}
	pools := map[string]*poolInfo{}
	poolOf := func(p *model.Pool) *poolInfo {
		if pi, ok := pools[p.Name]; ok {
			return pi
		}
		pi := &poolInfo{advs: l2AdvsFor(s.Config, p.Name)}
		if len(pi.advs) > 0 {
			pi.cands = []string{}
			for _, name := range names {
				n := s.Nodes[name]
				if live[name] && !n.Excluded() && !n.NetworkUnavailable && anyAdvSelects(pi.advs, n.Labels) &&
					!noLinkFor(s.NoLink[name], pi.advs, n.Labels) {
					pi.cands = append(pi.cands, name)
				}
			}
		}
		pools[p.Name] = pi
		return pi
	}

	byIP := make(map[netip.Addr]*ipInfo, len(s.Services))
	for _, svc := range s.Services {
		for _, ip := range svc.IPs {
			pool := s.Config.PoolFor(ip)
			if pool == nil {
				continue
			}
			pi := poolOf(pool)
			if len(pi.advs) == 0 {
				continue
			}
			cands := pi.cands
			if svc.Local {
				eps := s.Endpoints[svc.Key]
				cands = make([]string, 0, len(pi.cands))
				for _, n := range pi.cands {
					if eps[n] {
						cands = append(cands, n)
					}
				}
			}
			info := byIP[ip]
			if info == nil {
				byIP[ip] = &ipInfo{pool: pool, services: []model.ServiceKey{svc.Key}, cands: cands}
				continue
			}
			// A shared IP: candidates of every Service holding it.
			info.services = append(info.services, svc.Key)
			both := make([]string, 0, min(len(info.cands), len(cands)))
			for _, n := range info.cands {
				if _, ok := slices.BinarySearch(cands, n); ok {
					both = append(both, n)
				}
			}
			info.cands = both
		}
	}

	// The addresses of one Service (both families of a dual-stack one,
	// and through a shared address those of the Services sharing it) go
	// to one node: the group's first address is elected, among the
	// candidates of all of them, and the others follow it. A group whose
	// addresses have no candidate in common is elected address by address.
	groups := l2Groups(s.Services, byIP)
	in := election.Input{Candidates: make(map[netip.Addr][]string, len(byIP)), Claims: s.Claims}
	follows := map[netip.Addr]netip.Addr{}
	for ip, info := range byIP {
		g := groups[ip]
		switch {
		case len(g) < 2:
			in.Candidates[ip] = info.cands
			continue
		case ip != g[0]:
			continue // decided with the group's first address
		}
		common := info.cands
		for _, other := range g[1:] {
			common = intersectSorted(common, byIP[other].cands)
		}
		if len(common) == 0 {
			for _, a := range g {
				in.Candidates[a] = byIP[a].cands
			}
			continue
		}
		in.Candidates[ip] = common
		for _, a := range g[1:] {
			follows[a] = ip
		}
	}
	var owners map[netip.Addr]string
	if s.Live == nil {
		// Without memberlist there are no claims to keep owners where
		// they are: each address goes to its best-scoring candidate, so
		// it moves only when its candidates change.
		owners = election.ByScore(in.Candidates)
	} else {
		owners = election.Elect(in)
	}
	for ip, lead := range follows {
		if o, ok := owners[lead]; ok {
			owners[ip] = o
		}
	}

	type ifKey struct{ pool, owner string }
	ifs := map[ifKey][]string{}
	out := make(map[netip.Addr]L2Announcement, len(owners))
	for ip, owner := range owners {
		if owner == "" {
			continue
		}
		info := byIP[ip]
		svcs := info.services
		if len(svcs) > 1 {
			svcs = slices.Clone(svcs)
			slices.SortFunc(svcs, compareKeys)
			svcs = slices.Compact(svcs)
		}
		k := ifKey{info.pool.Name, owner}
		iface, ok := ifs[k]
		if !ok {
			iface = interfacesFor(pools[info.pool.Name].advs, s.Nodes[owner].Labels)
			ifs[k] = iface
		}
		out[ip] = L2Announcement{
			IP:         ip,
			Owner:      owner,
			Services:   svcs,
			Pool:       info.pool.Name,
			Interfaces: iface,
		}
	}
	return out
}

// ipInfo is an address of L2Desired: its pool, Services and candidates.
type ipInfo struct {
	pool     *model.Pool
	services []model.ServiceKey
	cands    []string // sorted; shared between IPs, never modified
}

// l2Groups groups the addresses of byIP that one Service holds together
// (linked through shared addresses too): each address of a group of two
// or more maps to the group, sorted (netip.Addr.Compare, so IPv4 first).
func l2Groups(services []Service, byIP map[netip.Addr]*ipInfo) map[netip.Addr][]netip.Addr {
	parent := map[netip.Addr]netip.Addr{}
	var find func(netip.Addr) netip.Addr
	find = func(a netip.Addr) netip.Addr {
		p, ok := parent[a]
		if !ok || p == a {
			return a
		}
		r := find(p)
		parent[a] = r
		return r
	}
	for _, svc := range services {
		var first netip.Addr
		for _, ip := range svc.IPs {
			if _, ok := byIP[ip]; !ok {
				continue
			}
			if !first.IsValid() {
				first = ip
				continue
			}
			if a, b := find(first), find(ip); a != b {
				parent[b] = a
			}
		}
	}
	if len(parent) == 0 {
		return nil
	}
	members := map[netip.Addr][]netip.Addr{}
	for ip := range parent {
		r := find(ip)
		members[r] = append(members[r], ip)
	}
	out := map[netip.Addr][]netip.Addr{}
	for r, m := range members {
		if !slices.Contains(m, r) {
			m = append(m, r)
		}
		slices.SortFunc(m, netip.Addr.Compare)
		for _, ip := range m {
			out[ip] = m
		}
	}
	return out
}

// intersectSorted returns the names in both sorted lists.
func intersectSorted(a, b []string) []string {
	out := make([]string, 0, min(len(a), len(b)))
	for _, n := range a {
		if _, ok := slices.BinarySearch(b, n); ok {
			out = append(out, n)
		}
	}
	return out
}

// l2AdvsFor returns the L2Advertisements covering pool.
func l2AdvsFor(cfg *model.Config, pool string) []*model.L2Advertisement {
	var out []*model.L2Advertisement
	for _, a := range cfg.L2Advs {
		if _, ok := slices.BinarySearch(a.Pools, pool); ok {
			out = append(out, a)
		}
	}
	return out
}

func anyAdvSelects(advs []*model.L2Advertisement, labels map[string]string) bool {
	for _, a := range advs {
		if model.AnySelects(a.NodeSelectors, labels) {
			return true
		}
	}
	return false
}

// interfacesFor merges the interfaces of the advertisements selecting the
// node; any of them without interfaces means the default set (nil).
func interfacesFor(advs []*model.L2Advertisement, labels map[string]string) []string {
	var out []string
	for _, a := range advs {
		if !model.AnySelects(a.NodeSelectors, labels) {
			continue
		}
		if len(a.Interfaces) == 0 {
			return nil
		}
		out = append(out, a.Interfaces...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func compareKeys(a, b model.ServiceKey) int {
	if a.Namespace != b.Namespace {
		if a.Namespace < b.Namespace {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// ServingNodes returns, per Service of slices, the nodes holding an
// endpoint that serves it, for externalTrafficPolicy: Local: the nodes
// with a ready endpoint; for a Service with no ready endpoint anywhere,
// the nodes with one still serving while it terminates, as kube-proxy
// falls back to them, so that a Service whose pods all terminate (a
// rollout of a single replica) stays reachable while they drain.
// A missing condition counts as true (ready; serving when ready).
func ServingNodes(slices []discoveryv1.EndpointSlice) map[model.ServiceKey]map[string]bool {
	ready := map[model.ServiceKey]map[string]bool{}
	serving := map[model.ServiceKey]map[string]bool{}
	add := func(m map[model.ServiceKey]map[string]bool, k model.ServiceKey, node string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][node] = true
	}
	for i := range slices {
		es := &slices[i]
		name := es.Labels[v1beta1.LabelServiceName]
		if name == "" {
			continue
		}
		key := model.ServiceKey{Namespace: es.Namespace, Name: name}
		for _, ep := range es.Endpoints {
			if ep.NodeName == nil {
				continue
			}
			isReady := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			isServing := isReady
			if ep.Conditions.Serving != nil {
				isServing = *ep.Conditions.Serving
			}
			switch {
			case isReady:
				add(ready, key, *ep.NodeName)
			case isServing:
				add(serving, key, *ep.NodeName)
			}
		}
	}
	for k, nodes := range serving {
		if _, has := ready[k]; !has {
			ready[k] = nodes
		}
	}
	return ready
}
