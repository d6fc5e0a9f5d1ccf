package speaker

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"

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
