package speaker

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/election"
	"github.com/herald-lb/herald/internal/model"
)

type sel struct{ s labels.Selector }

func (s sel) Matches(l map[string]string) bool { return s.s.Matches(labels.Set(l)) }
func (s sel) String() string                   { return s.s.String() }

func mustSel(t *testing.T, expr string) model.Selector {
	t.Helper()
	s, err := labels.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return sel{s}
}

var (
	ip1 = netip.MustParseAddr("172.31.255.200")
	ip2 = netip.MustParseAddr("172.31.255.201")
	ip6 = netip.MustParseAddr("fd00:31::200")
)

func testConfig(advs ...*model.L2Advertisement) *model.Config {
	pool := &model.Pool{Name: "l2", AutoAssign: true, Ranges: []model.Range{
		{First: netip.MustParseAddr("172.31.255.200"), Last: netip.MustParseAddr("172.31.255.250")},
		{First: netip.MustParseAddr("fd00:31::200"), Last: netip.MustParseAddr("fd00:31::250")},
	}}
	bgp := &model.Pool{Name: "bgp", AutoAssign: true, Ranges: []model.Range{
		{First: netip.MustParseAddr("10.9.0.0"), Last: netip.MustParseAddr("10.9.0.255")},
	}}
	if advs == nil {
		advs = []*model.L2Advertisement{{Name: "all", Pools: []string{"l2"}}}
	}
	return &model.Config{
		Pools:     map[string]*model.Pool{"l2": pool, "bgp": bgp},
		PoolOrder: []string{"bgp", "l2"},
		L2Advs:    advs,
	}
}

func readyNodes(names ...string) map[string]Node {
	out := map[string]Node{}
	for _, n := range names {
		out[n] = Node{Name: n, Ready: true, Labels: map[string]string{"kubernetes.io/hostname": n}}
	}
	return out
}

func svcKey(n string) model.ServiceKey { return model.ServiceKey{Namespace: "default", Name: n} }

// owners reduces the desired set to IP -> owner.
func owners(d map[netip.Addr]L2Announcement) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for ip, a := range d {
		out[ip] = a.Owner
	}
	return out
}

func TestL2DesiredCandidates(t *testing.T) {
	nodes := readyNodes("n1", "n2", "n3")
	excluded := readyNodes("n1", "n2", "n3")
	excluded["n1"] = Node{Name: "n1", Ready: true, Labels: map[string]string{labelExcludeFromLB: ""}}
	excluded["n2"] = Node{Name: "n2", Ready: true, NetworkUnavailable: true}
	leaving := readyNodes("n1", "n2", "n3")
	leaving["n1"] = Node{Name: "n1", Ready: true, Leaving: true}
	leaving["n3"] = Node{Name: "n3", Ready: true, Leaving: true}
	notReady := readyNodes("n1", "n2", "n3")
	notReady["n1"] = Node{Name: "n1"}
	notReady["n2"] = Node{Name: "n2"}

	tests := []struct {
		name string
		snap Snapshot
		want map[netip.Addr]string
	}{
		{
			name: "no config announces nothing",
			snap: Snapshot{Nodes: nodes, Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}}}},
			want: map[netip.Addr]string{},
		},
		{
			name: "pool without L2 advertisement is not announced",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2", "n3"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{netip.MustParseAddr("10.9.0.1")}}}},
			want: map[netip.Addr]string{},
		},
		{
			name: "excluded label and NetworkUnavailable never own",
			snap: Snapshot{Config: testConfig(), Nodes: excluded, Live: []string{"n1", "n2", "n3"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}, {Key: svcKey("b"), IPs: []netip.Addr{ip2}}}},
			want: map[netip.Addr]string{ip1: "n3", ip2: "n3", ip6: "n3"},
		},
		{
			name: "leaving nodes (deleted, or tainted for deletion) never own",
			snap: Snapshot{Config: testConfig(), Nodes: leaving, Live: []string{"n1", "n2", "n3"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}, {Key: svcKey("b"), IPs: []netip.Addr{ip2}}}},
			want: map[netip.Addr]string{ip1: "n2", ip2: "n2", ip6: "n2"},
		},
		{
			name: "only live members are candidates",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n2"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}}},
			want: map[netip.Addr]string{ip1: "n2", ip6: "n2"},
		},
		{
			name: "memberlist off: Ready nodes are live",
			snap: Snapshot{Config: testConfig(), Nodes: notReady,
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}}}},
			want: map[netip.Addr]string{ip1: "n3"},
		},
		{
			name: "Local policy: only nodes with a ready endpoint",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2", "n3"},
				Services:  []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}, Local: true}},
				Endpoints: map[model.ServiceKey]map[string]bool{svcKey("a"): {"n3": true}}},
			want: map[netip.Addr]string{ip1: "n3"},
		},
		{
			name: "Local policy without endpoints: nobody announces",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2", "n3"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}, Local: true}}},
			want: map[netip.Addr]string{},
		},
		{
			name: "shared IP: candidates are the intersection",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2", "n3"},
				Services: []Service{
					{Key: svcKey("a"), IPs: []netip.Addr{ip1}, Local: true},
					{Key: svcKey("b"), IPs: []netip.Addr{ip1}, Local: true},
				},
				Endpoints: map[model.ServiceKey]map[string]bool{svcKey("a"): {"n1": true, "n2": true}, svcKey("b"): {"n2": true, "n3": true}}},
			want: map[netip.Addr]string{ip1: "n2"},
		},
		{
			name: "node selectors of the advertisement",
			snap: Snapshot{
				Config: testConfig(&model.L2Advertisement{Name: "only-n2", Pools: []string{"l2"},
					NodeSelectors: []model.Selector{mustSel(t, "kubernetes.io/hostname=n2")}}),
				Nodes: nodes, Live: []string{"n1", "n2", "n3"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}}},
			want: map[netip.Addr]string{ip1: "n2", ip6: "n2"},
		},
		{
			name: "a node without link on the interfaces it answers on is no candidate",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}, {Key: svcKey("b"), IPs: []netip.Addr{ip2}}},
				NoLink:   map[string][]string{"n1": {""}}},
			want: map[netip.Addr]string{ip1: "n2", ip2: "n2", ip6: "n2"},
		},
		{
			name: "a node without a configuration is no candidate",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}, {Key: svcKey("b"), IPs: []netip.Addr{ip2}}},
				NoLink:   map[string][]string{"n2": {NoConfigSet}}},
			want: map[netip.Addr]string{ip1: "n1", ip2: "n1", ip6: "n1"},
		},
		{
			name: "no link on other interfaces does not count",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}}},
				NoLink:   map[string][]string{"n1": {"eth1"}}},
			want: map[netip.Addr]string{ip1: "n1"},
		},
		{
			name: "no link on the advertisement's interfaces",
			snap: Snapshot{
				Config: testConfig(&model.L2Advertisement{Name: "eth1", Pools: []string{"l2"}, Interfaces: []string{"eth1"}}),
				Nodes:  nodes, Live: []string{"n1", "n2"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1, ip6}}},
				NoLink:   map[string][]string{"n1": {"eth1"}}},
			want: map[netip.Addr]string{ip1: "n2", ip6: "n2"},
		},
		{
			name: "the claims of a node without link do not count",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}}},
				Claims:   map[string][]election.Claim{"n1": {{IP: ip1, Epoch: 5}}},
				NoLink:   map[string][]string{"n1": {""}}},
			want: map[netip.Addr]string{ip1: "n2"},
		},
		{
			name: "claims keep the owner (no failback)",
			snap: Snapshot{Config: testConfig(), Nodes: nodes, Live: []string{"n1", "n2", "n3"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}}},
				Claims:   map[string][]election.Claim{"n1": {{IP: ip1, Epoch: 5}}}},
			want: map[netip.Addr]string{ip1: "n1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := owners(L2Desired(tc.snap))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("owners (-want +got):\n%s", diff)
			}
		})
	}
}

func TestL2DesiredSharedIPHasOneAnnouncement(t *testing.T) {
	snap := Snapshot{Config: testConfig(), Nodes: readyNodes("n1", "n2"), Live: []string{"n1", "n2"},
		Services: []Service{{Key: svcKey("b"), IPs: []netip.Addr{ip1}}, {Key: svcKey("a"), IPs: []netip.Addr{ip1}}}}
	got := L2Desired(snap)
	if len(got) != 1 {
		t.Fatalf("got %d announcements, want 1", len(got))
	}
	a := got[ip1]
	if diff := cmp.Diff([]model.ServiceKey{svcKey("a"), svcKey("b")}, a.Services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if a.Pool != "l2" {
		t.Errorf("pool = %q", a.Pool)
	}
}

func TestL2DesiredInterfaces(t *testing.T) {
	nodes := readyNodes("n1")
	tests := []struct {
		name string
		advs []*model.L2Advertisement
		want []string
	}{
		{"no interfaces means default", []*model.L2Advertisement{{Name: "a", Pools: []string{"l2"}}}, nil},
		{"union of advertisements", []*model.L2Advertisement{
			{Name: "a", Pools: []string{"l2"}, Interfaces: []string{"eth1"}},
			{Name: "b", Pools: []string{"l2"}, Interfaces: []string{"eth0", "eth1"}},
		}, []string{"eth0", "eth1"}},
		{"one default wins", []*model.L2Advertisement{
			{Name: "a", Pools: []string{"l2"}, Interfaces: []string{"eth1"}},
			{Name: "b", Pools: []string{"l2"}},
		}, nil},
		{"advertisement not selecting the owner does not count", []*model.L2Advertisement{
			{Name: "a", Pools: []string{"l2"}, Interfaces: []string{"eth1"}},
			{Name: "b", Pools: []string{"l2"}, Interfaces: []string{"eth9"}, NodeSelectors: []model.Selector{mustSel(t, "x=y")}},
		}, []string{"eth1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := Snapshot{Config: testConfig(tc.advs...), Nodes: nodes, Live: []string{"n1"},
				Services: []Service{{Key: svcKey("a"), IPs: []netip.Addr{ip1}}}}
			got := L2Desired(snap)[ip1].Interfaces
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("interfaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestL2DesiredSpread(t *testing.T) {
	nodes := readyNodes("n1", "n2", "n3")
	var svcs []Service
	base := netip.MustParseAddr("172.31.0.0")
	cfg := testConfig()
	cfg.Pools["l2"].Ranges = []model.Range{{First: base, Last: netip.MustParseAddr("172.31.1.255")}}
	ip := base
	for i := 0; i < 300; i++ {
		svcs = append(svcs, Service{Key: svcKey("s" + ip.String()), IPs: []netip.Addr{ip}})
		ip = ip.Next()
	}
	got := owners(L2Desired(Snapshot{Config: cfg, Nodes: nodes, Live: []string{"n1", "n2", "n3"}, Services: svcs}))
	load := map[string]int{}
	for _, o := range got {
		load[o]++
	}
	lo, hi := 300, 0
	for _, n := range []string{"n1", "n2", "n3"} {
		lo, hi = min(lo, load[n]), max(hi, load[n])
	}
	if float64(hi) > 1.3*float64(lo) {
		t.Errorf("300 IPs over 3 nodes: busiest %d, least busy %d (%v)", hi, lo, load)
	}
}

// The addresses of one Service go to one node: both families of a
// dual-stack Service, and through a shared address the other Service's.
func TestL2DesiredOneNodePerService(t *testing.T) {
	nodes := readyNodes("n1", "n2", "n3")
	for _, live := range [][]string{{"n1", "n2", "n3"}, nil} {
		var svcs []Service
		for i := range 20 {
			v4 := netip.AddrFrom4([4]byte{172, 31, 255, byte(200 + i)})
			v6 := netip.MustParseAddr(fmt.Sprintf("fd00:31::%d", 200+i))
			svcs = append(svcs, Service{Key: svcKey(fmt.Sprintf("s%d", i)), IPs: []netip.Addr{v4, v6}})
		}
		// t shares s0's IPv6 address and has an IPv4 address of its own.
		svcs = append(svcs, Service{Key: svcKey("t"), IPs: []netip.Addr{netip.MustParseAddr("172.31.255.240"), netip.MustParseAddr("fd00:31::200")}})
		got := owners(L2Desired(Snapshot{Config: testConfig(), Nodes: nodes, Live: live, Services: svcs}))
		for _, svc := range svcs {
			if a, b := got[svc.IPs[0]], got[svc.IPs[1]]; a == "" || a != b {
				t.Errorf("live %v: %s's addresses go to %q and %q, want one node", live, svc.Key, a, b)
			}
		}
		load := map[string]int{}
		for _, svc := range svcs[:20] {
			load[got[svc.IPs[0]]]++
		}
		if len(load) < 2 {
			t.Errorf("live %v: 20 dual-stack Services all on %v", live, load)
		}
	}
}

// Without memberlist (no claims) a new Service moves no other Service's
// address: each address goes to its best-scoring candidate.
func TestL2DesiredWithoutMembershipStable(t *testing.T) {
	nodes := readyNodes("n1", "n2", "n3")
	var svcs []Service
	for i := range 30 {
		svcs = append(svcs, Service{Key: svcKey(fmt.Sprintf("s%d", i)), IPs: []netip.Addr{netip.AddrFrom4([4]byte{172, 31, 255, byte(211 + i)})}})
	}
	before := owners(L2Desired(Snapshot{Config: testConfig(), Nodes: nodes, Services: svcs}))
	svcs = append(svcs, Service{Key: svcKey("new"), IPs: []netip.Addr{netip.MustParseAddr("172.31.255.200")}})
	after := owners(L2Desired(Snapshot{Config: testConfig(), Nodes: nodes, Services: svcs}))
	moved := 0
	for ip, o := range before {
		if after[ip] != o {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("a new Service moved %d of 30 addresses", moved)
	}
	load := map[string]int{}
	for _, o := range after {
		load[o]++
	}
	if len(load) != 3 {
		t.Errorf("31 addresses over 3 nodes: %v", load)
	}
}

// l2DesiredReference is L2Desired as first written: a candidate map per
// Service and IP. The optimised L2Desired must agree with it.
func l2DesiredReference(s Snapshot) map[netip.Addr]L2Announcement {
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
				if slices.Contains(s.NoLink[name], NoConfigSet) || slices.Contains(s.NoLink[name], LinkSetName(interfacesFor(advs, n.Labels))) {
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

	// Groups: addresses one Service holds together, merged until stable.
	group := map[netip.Addr]int{}
	for ip := range byIP {
		group[ip] = len(group)
	}
	for changed := true; changed; {
		changed = false
		for _, svc := range s.Services {
			var g []int
			for _, ip := range svc.IPs {
				if id, ok := group[ip]; ok {
					g = append(g, id)
				}
			}
			for _, id := range g[min(1, len(g)):] {
				if id == g[0] {
					continue
				}
				for ip, other := range group {
					if other == id {
						group[ip] = g[0]
					}
				}
				changed = true
			}
		}
	}
	members := map[int][]netip.Addr{}
	for ip, id := range group {
		members[id] = append(members[id], ip)
	}
	sorted := func(set map[string]bool) []string {
		list := make([]string, 0, len(set))
		for n := range set {
			list = append(list, n)
		}
		sort.Strings(list)
		return list
	}
	in := election.Input{Candidates: map[netip.Addr][]string{}, Claims: s.Claims}
	lead := map[netip.Addr]netip.Addr{}
	for _, m := range members {
		slices.SortFunc(m, netip.Addr.Compare)
		common := map[string]bool{}
		for n := range byIP[m[0]].cands {
			common[n] = true
		}
		for _, ip := range m[1:] {
			for n := range common {
				if !byIP[ip].cands[n] {
					delete(common, n)
				}
			}
		}
		if len(m) == 1 || len(common) == 0 {
			for _, ip := range m {
				in.Candidates[ip] = sorted(byIP[ip].cands)
			}
			continue
		}
		in.Candidates[m[0]] = sorted(common)
		for _, ip := range m[1:] {
			lead[ip] = m[0]
		}
	}
	var owners map[netip.Addr]string
	if s.Live == nil {
		owners = map[netip.Addr]string{}
		for ip, cands := range in.Candidates {
			best := ""
			for _, n := range cands {
				if best == "" || election.Score(ip, n) > election.Score(ip, best) {
					best = n
				}
			}
			if best != "" {
				owners[ip] = best
			}
		}
	} else {
		owners = election.Elect(in)
	}
	for ip, l := range lead {
		if o, ok := owners[l]; ok {
			owners[ip] = o
		}
	}

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

// randomSnapshot builds a snapshot with everything that matters to the
// election drawn at random: node labels and conditions, liveness,
// selectors and interfaces of advertisements, Local Services and their
// endpoints, shared IPs, claims.
func randomSnapshot(t *testing.T, r *rand.Rand) Snapshot {
	zones := []string{"a", "b"}
	nodes := map[string]Node{}
	var live []string
	for i := range 1 + r.IntN(5) {
		name := fmt.Sprintf("n%d", i+1)
		n := Node{Name: name, Ready: r.IntN(5) > 0, NetworkUnavailable: r.IntN(6) == 0, Leaving: r.IntN(8) == 0,
			Labels: map[string]string{"zone": zones[r.IntN(2)]}}
		if r.IntN(6) == 0 {
			n.Labels[labelExcludeFromLB] = ""
		}
		nodes[name] = n
		if r.IntN(5) > 0 {
			live = append(live, name)
		}
	}
	if r.IntN(4) == 0 {
		live = nil // memberlist off
	}
	cfg := testConfig()
	cfg.Pools["l2b"] = &model.Pool{Name: "l2b", AutoAssign: true, Ranges: []model.Range{
		{First: netip.MustParseAddr("172.31.254.0"), Last: netip.MustParseAddr("172.31.254.255")}}}
	cfg.PoolOrder = []string{"bgp", "l2", "l2b"}
	var advs []*model.L2Advertisement
	for i := range r.IntN(4) {
		a := &model.L2Advertisement{Name: fmt.Sprintf("adv%d", i), Pools: []string{[]string{"l2", "l2b"}[r.IntN(2)]}}
		if r.IntN(2) == 0 {
			a.Pools = []string{"l2", "l2b"}
		}
		if r.IntN(3) == 0 {
			a.NodeSelectors = []model.Selector{mustSel(t, "zone="+zones[r.IntN(2)])}
		}
		if r.IntN(3) == 0 {
			a.Interfaces = []string{[]string{"eth0", "eth1"}[r.IntN(2)]}
		}
		advs = append(advs, a)
	}
	cfg.L2Advs = advs
	addrs := []netip.Addr{netip.MustParseAddr("10.9.0.1")}
	for i := range 8 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{172, 31, 255, byte(200 + i)}),
			netip.AddrFrom4([4]byte{172, 31, 254, byte(i)}), netip.MustParseAddr(fmt.Sprintf("fd00:31::%d", 200+i)))
	}
	s := Snapshot{Config: cfg, Nodes: nodes, Live: live, Endpoints: map[model.ServiceKey]map[string]bool{}, Claims: map[string][]election.Claim{}}
	for i := range r.IntN(30) {
		svc := Service{Key: svcKey(fmt.Sprintf("s%d", i)), Local: r.IntN(3) == 0}
		for range 1 + r.IntN(2) {
			svc.IPs = append(svc.IPs, addrs[r.IntN(len(addrs))])
		}
		if svc.Local {
			eps := map[string]bool{}
			for name := range nodes {
				if r.IntN(2) == 0 {
					eps[name] = true
				}
			}
			s.Endpoints[svc.Key] = eps
		}
		s.Services = append(s.Services, svc)
	}
	s.NoLink = map[string][]string{}
	for name := range nodes {
		if r.IntN(4) == 0 {
			s.NoLink[name] = []string{[]string{"", "eth0", "eth1"}[r.IntN(3)]}
		}
	}
	for _, name := range live {
		var claims []election.Claim
		for _, a := range addrs {
			if r.IntN(4) == 0 {
				claims = append(claims, election.Claim{IP: a, Epoch: int64(r.IntN(3))})
			}
		}
		sort.Slice(claims, func(i, j int) bool { return claims[i].IP.Less(claims[j].IP) })
		s.Claims[name] = claims
	}
	return s
}

func TestL2DesiredMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		snap := randomSnapshot(t, r)
		want, got := l2DesiredReference(snap), L2Desired(snap)
		if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
			t.Fatalf("case %d: L2Desired differs from the reference (-want +got):\n%s", i, d)
		}
	}
}

// scaleSnapshot is n Services with one IPv4 address each on three live
// nodes, a third of the addresses claimed by each node.
func scaleSnapshot(n int) Snapshot {
	cfg := testConfig()
	cfg.Pools["l2"].Ranges = []model.Range{{First: netip.MustParseAddr("172.31.0.0"), Last: netip.MustParseAddr("172.31.127.255")}}
	s := Snapshot{Config: cfg, Nodes: readyNodes("n1", "n2", "n3"), Live: []string{"n1", "n2", "n3"},
		Claims: map[string][]election.Claim{}}
	ip := netip.MustParseAddr("172.31.0.0")
	names := []string{"n1", "n2", "n3"}
	for i := range n {
		s.Services = append(s.Services, Service{Key: svcKey(fmt.Sprintf("filler-%05d", i)), IPs: []netip.Addr{ip}})
		owner := names[i%3]
		s.Claims[owner] = append(s.Claims[owner], election.Claim{IP: ip, Epoch: 1})
		ip = ip.Next()
	}
	return s
}

func BenchmarkL2Desired10k(b *testing.B) {
	snap := scaleSnapshot(10000)
	b.ReportAllocs()
	for b.Loop() {
		L2Desired(snap)
	}
}

func BenchmarkL2DesiredReference10k(b *testing.B) {
	snap := scaleSnapshot(10000)
	b.ReportAllocs()
	for b.Loop() {
		l2DesiredReference(snap)
	}
}

func TestOwnNoLink(t *testing.T) {
	cfg := testConfig(
		&model.L2Advertisement{Name: "default", Pools: []string{"l2"}},
		&model.L2Advertisement{Name: "eth1", Pools: []string{"l2b"}, Interfaces: []string{"eth1"},
			NodeSelectors: []model.Selector{mustSel(t, "zone=a")}},
	)
	cfg.Pools["l2b"] = &model.Pool{Name: "l2b"}
	cfg.PoolOrder = []string{"bgp", "l2", "l2b"}
	down := func(sets ...string) func([]string) bool {
		return func(spec []string) bool { return !slices.Contains(sets, LinkSetName(spec)) }
	}
	tests := []struct {
		name   string
		labels map[string]string
		linkUp func([]string) bool
		want   []string
	}{
		{"all links up", map[string]string{"zone": "a"}, down(), nil},
		{"default set and eth1 down", map[string]string{"zone": "a"}, down("", "eth1"), []string{"", "eth1"}},
		{"eth1 down, which this node does not answer on", map[string]string{"zone": "b"}, down("eth1"), nil},
		{"default set down", map[string]string{"zone": "b"}, down("", "eth1"), []string{""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, OwnNoLink(cfg, tc.labels, tc.linkUp)); diff != "" {
				t.Errorf("OwnNoLink (-want +got):\n%s", diff)
			}
		})
	}
	if got := OwnNoLink(nil, nil, down("")); got != nil {
		t.Errorf("OwnNoLink without a configuration = %q", got)
	}
}

func TestKeepsRoutesOnShutdown(t *testing.T) {
	for _, tt := range []struct {
		name string
		node *Node
		want bool
	}{
		{"a node in service: a rolling update", &Node{Name: "n", Ready: true}, true},
		{"not ready: still no maintenance", &Node{Name: "n"}, true},
		{"cordoned: drained for maintenance", &Node{Name: "n", Ready: true, Cordoned: true}, false},
		{"leaving", &Node{Name: "n", Ready: true, Leaving: true}, false},
		{"Node gone", nil, false},
	} {
		if got := KeepsRoutesOnShutdown(tt.node); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The nodes serving a Service under externalTrafficPolicy: Local: those
// with a ready endpoint; while the Service has none ready anywhere, those
// with a serving, terminating one (kube-proxy's fallback).
func TestServingNodes(t *testing.T) {
	yes, no := ptr.To(true), ptr.To(false)
	ep := func(node string, ready, serving, terminating *bool) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
		if node != "" {
			e.NodeName = ptr.To(node)
		}
		return e
	}
	slice := func(svc string, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x",
			Labels: map[string]string{v1beta1.LabelServiceName: svc}}, Endpoints: eps}
	}
	got := ServingNodes([]discoveryv1.EndpointSlice{
		slice("ready", ep("n1", yes, yes, no), ep("n2", no, no, no)),
		slice("draining", ep("n2", no, yes, yes), ep("n3", no, no, yes)),
		slice("mixed", ep("n1", yes, yes, no), ep("n2", no, yes, yes)),
		slice("old-api", ep("n3", nil, nil, nil), ep("", yes, yes, no)),
		slice("gone", ep("n1", no, no, yes)),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unlabelled"}, Endpoints: []discoveryv1.Endpoint{ep("n1", yes, yes, no)}},
	})
	want := map[model.ServiceKey]map[string]bool{
		svcKey("ready"):    {"n1": true},
		svcKey("draining"): {"n2": true},
		svcKey("mixed"):    {"n1": true},
		svcKey("old-api"):  {"n3": true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("serving nodes (-want +got):\n%s", d)
	}
	// The informer's slimmed copy keeps what this needs.
	draining := slice("draining", ep("n2", no, yes, yes), ep("n3", no, no, yes))
	slim, err := slimEndpointSlice(&draining)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ServingNodes([]discoveryv1.EndpointSlice{draining}), ServingNodes([]discoveryv1.EndpointSlice{*slim.(*discoveryv1.EndpointSlice)})); d != "" {
		t.Errorf("serving nodes of the slimmed slice differ (-full +slim):\n%s", d)
	}
}
