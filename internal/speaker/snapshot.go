package speaker

import (
	"net/netip"
	"slices"
	"sort"

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
}

// Excluded reports whether the node carries the label that removes it
// from external load balancers.
func (n Node) Excluded() bool {
	_, ok := n.Labels[labelExcludeFromLB]
	return ok
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
	// interfaces.
	Interfaces []string
}

// L2Desired elects an owner for every layer-2 IP of the snapshot and
// returns them by IP. IPs without any candidate are absent.
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

	type ipInfo struct {
		pool     *model.Pool
		services []model.ServiceKey
		cands    map[string]bool // nil until the first Service narrows it
	}
	byIP := map[netip.Addr]*ipInfo{}
	for _, svc := range s.Services {
		for _, ip := range svc.IPs {
			pool := s.Config.PoolFor(ip)
			if pool == nil {
				continue
			}
			advs := l2AdvsFor(s.Config, pool.Name)
			if len(advs) == 0 {
				continue
			}
			info := byIP[ip]
			if info == nil {
				info = &ipInfo{pool: pool}
				byIP[ip] = info
			}
			info.services = append(info.services, svc.Key)
			cands := map[string]bool{}
			for name, n := range s.Nodes {
				if !live[name] || n.Excluded() || n.NetworkUnavailable {
					continue
				}
				if svc.Local && !s.Endpoints[svc.Key][name] {
					continue
				}
				if !anyAdvSelects(advs, n.Labels) {
					continue
				}
				cands[name] = true
			}
			if info.cands == nil {
				info.cands = cands
			} else {
				for n := range info.cands {
					if !cands[n] {
						delete(info.cands, n)
					}
				}
			}
		}
	}

	in := election.Input{Candidates: map[netip.Addr][]string{}, Claims: s.Claims}
	for ip, info := range byIP {
		list := make([]string, 0, len(info.cands))
		for n := range info.cands {
			list = append(list, n)
		}
		sort.Strings(list)
		in.Candidates[ip] = list
	}
	owners := election.Elect(in)

	out := make(map[netip.Addr]L2Announcement, len(owners))
	for ip, owner := range owners {
		if owner == "" {
			continue
		}
		info := byIP[ip]
		svcs := slices.Clone(info.services)
		slices.SortFunc(svcs, compareKeys)
		svcs = slices.Compact(svcs)
		out[ip] = L2Announcement{
			IP:         ip,
			Owner:      owner,
			Services:   svcs,
			Pool:       info.pool.Name,
			Interfaces: interfacesFor(l2AdvsFor(s.Config, info.pool.Name), s.Nodes[owner].Labels),
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
