package speaker

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/model"
)

// bgpView reduces a BGPDesired to strings: per peer, its routes as
// "prefix via next-hop [communities] lp=N".
type bgpView struct {
	RouterID string
	Routes   map[string][]string
	Services map[string]string
	Problems []string
}

func viewBGP(d BGPDesired) bgpView {
	v := bgpView{Routes: map[string][]string{}, Services: map[string]string{}, Problems: d.Problems}
	if d.RouterID.IsValid() {
		v.RouterID = d.RouterID.String()
	}
	for _, s := range d.Sessions {
		routes := []string{}
		for _, r := range s.Routes {
			line := r.Prefix.String() + " via "
			if r.NextHop.IsValid() {
				line += r.NextHop.String()
			} else {
				line += "session"
			}
			if len(r.Communities) > 0 {
				var cs []string
				for _, c := range r.Communities {
					cs = append(cs, c.String())
				}
				line += " [" + strings.Join(cs, " ") + "]"
			}
			if r.LocalPref != 0 {
				line += fmt.Sprintf(" lp=%d", r.LocalPref)
			}
			routes = append(routes, line)
		}
		v.Routes[s.Peer.Name] = routes
	}
	for k, sr := range d.Services {
		var ps []string
		for _, p := range sr.Prefixes {
			ps = append(ps, p.String())
		}
		v.Services[k.Name] = strings.Join(ps, ",") + " -> " + strings.Join(sr.Peers, ",")
	}
	return v
}

var (
	bgpPool = &model.Pool{Name: "bgp", Ranges: []model.Range{
		{First: netip.MustParseAddr("10.9.0.0"), Last: netip.MustParseAddr("10.9.0.255")},
		{First: netip.MustParseAddr("fd00:9::"), Last: netip.MustParseAddr("fd00:9::ff")},
	}}
	l2Pool = &model.Pool{Name: "l2", Ranges: []model.Range{
		{First: netip.MustParseAddr("172.31.255.200"), Last: netip.MustParseAddr("172.31.255.250")},
	}}
	bgpIP1 = netip.MustParseAddr("10.9.0.1")
	bgpIP2 = netip.MustParseAddr("10.9.0.2")
	bgpIP6 = netip.MustParseAddr("fd00:9::1")

	n1v4 = netip.MustParseAddr("172.31.255.11")
	n1v6 = netip.MustParseAddr("fd00:31::11")

	routerV4 = &model.Peer{Name: "r4", MyASN: 64513, ASN: 64512, Addr: netip.MustParseAddr("172.31.255.1"), Port: 179}
	routerV6 = &model.Peer{Name: "r6", MyASN: 64513, ASN: 64512, Addr: netip.MustParseAddr("fd00:31::1"), Port: 179}
	ibgp     = &model.Peer{Name: "rr", MyASN: 64513, ASN: 64513, Addr: netip.MustParseAddr("172.31.255.2"), Port: 179}

	comm100   = model.Community{Value: 65000<<16 | 100}
	comm200   = model.Community{Value: 65000<<16 | 200}
	commLarge = model.Community{Large: true, Global: 1, Local1: 2, Local2: 3}
)

func bgpConfig(peers []*model.Peer, advs ...*model.BGPAdvertisement) *model.Config {
	return &model.Config{
		Pools:     map[string]*model.Pool{"bgp": bgpPool, "l2": l2Pool},
		PoolOrder: []string{"bgp", "l2"},
		BGPAdvs:   advs,
		Peers:     peers,
	}
}

func bgpAdv(name string, mod ...func(*model.BGPAdvertisement)) *model.BGPAdvertisement {
	a := &model.BGPAdvertisement{Name: name, Pools: []string{"bgp"}, AggregationLength: 32, AggregationLengthV6: 128}
	for _, m := range mod {
		m(a)
	}
	return a
}

func bgpSvc(name string, ips ...netip.Addr) Service {
	return Service{Key: svcKey(name), IPs: ips}
}

func TestComputeBGP(t *testing.T) {
	nodes := readyNodes("n1", "n2")
	nodes["n1"] = Node{Name: "n1", Ready: true, Labels: map[string]string{"kubernetes.io/hostname": "n1", "rack": "a"}}
	addrs := []netip.Addr{n1v4, n1v6}
	base := func(cfg *model.Config, svcs ...Service) BGPInput {
		return BGPInput{Config: cfg, Services: svcs, Nodes: nodes, NodeName: "n1", NodeAddrs: addrs}
	}
	both := []*model.Peer{routerV4, routerV6}

	tests := []struct {
		name string
		in   BGPInput
		want bgpView
	}{
		{
			name: "no configuration: nothing",
			in:   BGPInput{Nodes: nodes, NodeName: "n1", NodeAddrs: addrs},
			want: bgpView{},
		},
		{
			name: "host routes to every peer, next hop the node's address of the family",
			in:   base(bgpConfig(both, bgpAdv("a")), bgpSvc("s1", bgpIP1, bgpIP6)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes: map[string][]string{
					"r4": {"10.9.0.1/32 via 172.31.255.11", "fd00:9::1/128 via fd00:31::11"},
					"r6": {"10.9.0.1/32 via 172.31.255.11", "fd00:9::1/128 via fd00:31::11"},
				},
				Services: map[string]string{"s1": "10.9.0.1/32,fd00:9::1/128 -> r4,r6"}},
		},
		{
			name: "aggregation: addresses share one prefix per family",
			in: base(bgpConfig(both[:1], bgpAdv("a", func(a *model.BGPAdvertisement) { a.AggregationLength, a.AggregationLengthV6 = 24, 120 })),
				bgpSvc("s1", bgpIP1, bgpIP6), bgpSvc("s2", bgpIP2)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"r4": {"10.9.0.0/24 via 172.31.255.11", "fd00:9::/120 via fd00:31::11"}},
				Services: map[string]string{"s1": "10.9.0.0/24,fd00:9::/120 -> r4", "s2": "10.9.0.0/24 -> r4"}},
		},
		{
			name: "two advertisements with different aggregation: both prefixes",
			in: base(bgpConfig(both[:1], bgpAdv("a"), bgpAdv("b", func(a *model.BGPAdvertisement) { a.AggregationLength = 24 })),
				bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"r4": {"10.9.0.0/24 via 172.31.255.11", "10.9.0.1/32 via 172.31.255.11"}},
				Services: map[string]string{"s1": "10.9.0.0/24,10.9.0.1/32 -> r4"}},
		},
		{
			name: "communities, standard and large; overlapping advertisements merge",
			in: base(bgpConfig(both[:1],
				bgpAdv("a", func(a *model.BGPAdvertisement) { a.Communities = []model.Community{comm200, commLarge} }),
				bgpAdv("b", func(a *model.BGPAdvertisement) {
					a.Communities = []model.Community{comm100, comm200}
					a.NodeSelectors = []model.Selector{mustSel(t, "rack=a")}
				})),
				bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"r4": {"10.9.0.1/32 via 172.31.255.11 [65000:100 65000:200 large:1:2:3]"}},
				Services: map[string]string{"s1": "10.9.0.1/32 -> r4"}},
		},
		{
			name: "localPref only to iBGP peers",
			in: base(bgpConfig([]*model.Peer{routerV4, ibgp}, bgpAdv("a", func(a *model.BGPAdvertisement) { a.LocalPref = 150 })),
				bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes: map[string][]string{
					"r4": {"10.9.0.1/32 via 172.31.255.11"},
					"rr": {"10.9.0.1/32 via 172.31.255.11 lp=150"},
				},
				Services: map[string]string{"s1": "10.9.0.1/32 -> r4,rr"}},
		},
		{
			name: "dynamicASN: internal is iBGP, external (no AS) is eBGP",
			in: base(bgpConfig([]*model.Peer{
				{Name: "dyn-ext", MyASN: 64513, Dynamic: model.DynamicExternal, Addr: netip.MustParseAddr("172.31.255.3"), Port: 179},
				{Name: "dyn-int", MyASN: 64513, ASN: 64513, Dynamic: model.DynamicInternal, Addr: netip.MustParseAddr("172.31.255.4"), Port: 179},
			}, bgpAdv("a", func(a *model.BGPAdvertisement) { a.LocalPref = 150 })),
				bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes: map[string][]string{
					"dyn-ext": {"10.9.0.1/32 via 172.31.255.11"},
					"dyn-int": {"10.9.0.1/32 via 172.31.255.11 lp=150"},
				},
				Services: map[string]string{"s1": "10.9.0.1/32 -> dyn-ext,dyn-int"}},
		},
		{
			name: "advertisement peers restrict the peers; per-peer attributes differ",
			in: base(bgpConfig([]*model.Peer{routerV4, ibgp},
				bgpAdv("to-r4", func(a *model.BGPAdvertisement) { a.Peers = []string{"r4"}; a.Communities = []model.Community{comm100} }),
				bgpAdv("to-rr", func(a *model.BGPAdvertisement) {
					a.Peers = []string{"rr"}
					a.Communities = []model.Community{comm200}
					a.LocalPref = 200
				})),
				bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes: map[string][]string{
					"r4": {"10.9.0.1/32 via 172.31.255.11 [65000:100]"},
					"rr": {"10.9.0.1/32 via 172.31.255.11 [65000:200] lp=200"},
				},
				Services: map[string]string{"s1": "10.9.0.1/32 -> r4,rr"}},
		},
		{
			name: "advertisement node selectors: a node not selected announces nothing",
			in: base(bgpConfig(both[:1], bgpAdv("a", func(a *model.BGPAdvertisement) { a.NodeSelectors = []model.Selector{mustSel(t, "rack=b")} })),
				bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11", Routes: map[string][]string{"r4": {}}, Services: map[string]string{}},
		},
		{
			name: "peer node selectors: only peers selecting this node",
			in: base(bgpConfig([]*model.Peer{routerV4, {Name: "other-rack", MyASN: 1, ASN: 2, Addr: netip.MustParseAddr("10.0.0.1"),
				NodeSelectors: []model.Selector{mustSel(t, "rack=b")}}}, bgpAdv("a")), bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"r4": {"10.9.0.1/32 via 172.31.255.11"}},
				Services: map[string]string{"s1": "10.9.0.1/32 -> r4"}},
		},
		{
			name: "pool without BGP advertisement: not announced",
			in:   base(bgpConfig(both[:1], bgpAdv("a")), bgpSvc("s1", netip.MustParseAddr("172.31.255.200"))),
			want: bgpView{RouterID: "172.31.255.11", Routes: map[string][]string{"r4": {}}, Services: map[string]string{}},
		},
		{
			name: "Local policy: only with a ready endpoint on this node",
			in: func() BGPInput {
				in := base(bgpConfig(both[:1], bgpAdv("a")),
					Service{Key: svcKey("here"), IPs: []netip.Addr{bgpIP1}, Local: true},
					Service{Key: svcKey("elsewhere"), IPs: []netip.Addr{bgpIP2}, Local: true},
					Service{Key: svcKey("none"), IPs: []netip.Addr{netip.MustParseAddr("10.9.0.3")}, Local: true})
				in.Endpoints = map[model.ServiceKey]map[string]bool{svcKey("here"): {"n1": true}, svcKey("elsewhere"): {"n2": true}}
				return in
			}(),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"r4": {"10.9.0.1/32 via 172.31.255.11"}},
				Services: map[string]string{"here": "10.9.0.1/32 -> r4"}},
		},
		{
			name: "excluded node: sessions stay, no routes",
			in: func() BGPInput {
				in := base(bgpConfig(both[:1], bgpAdv("a")), bgpSvc("s1", bgpIP1))
				in.Nodes = map[string]Node{"n1": {Name: "n1", Labels: map[string]string{labelExcludeFromLB: ""}}}
				return in
			}(),
			want: bgpView{RouterID: "172.31.255.11", Routes: map[string][]string{"r4": {}}, Services: map[string]string{}},
		},
		{
			name: "network unavailable: sessions stay, no routes",
			in: func() BGPInput {
				in := base(bgpConfig(both[:1], bgpAdv("a")), bgpSvc("s1", bgpIP1))
				in.Nodes = map[string]Node{"n1": {Name: "n1", NetworkUnavailable: true}}
				return in
			}(),
			want: bgpView{RouterID: "172.31.255.11", Routes: map[string][]string{"r4": {}}, Services: map[string]string{}},
		},
		{
			name: "leaving node: sessions stay, no routes",
			in: func() BGPInput {
				in := base(bgpConfig(both[:1], bgpAdv("a")), bgpSvc("s1", bgpIP1))
				in.Nodes = map[string]Node{"n1": {Name: "n1", Leaving: true}}
				return in
			}(),
			want: bgpView{RouterID: "172.31.255.11", Routes: map[string][]string{"r4": {}}, Services: map[string]string{}},
		},
		{
			name: "no Node object: peers without selectors only, no routes",
			in: func() BGPInput {
				in := base(bgpConfig([]*model.Peer{routerV4, {Name: "sel", MyASN: 1, ASN: 2, Addr: netip.MustParseAddr("10.0.0.1"),
					NodeSelectors: []model.Selector{mustSel(t, "rack=a")}}}, bgpAdv("a")), bgpSvc("s1", bgpIP1))
				in.Nodes = nil
				return in
			}(),
			want: bgpView{RouterID: "172.31.255.11", Routes: map[string][]string{"r4": {}}, Services: map[string]string{},
				Problems: []string{`no Node object "n1": peering only with peers without nodeSelectors, announcing nothing`}},
		},
		{
			name: "IPv6-only node: IPv4 prefixes only over the IPv4 session's own address, none to IPv6 peers",
			in: func() BGPInput {
				in := base(bgpConfig(both, bgpAdv("a")), bgpSvc("s1", bgpIP1, bgpIP6))
				in.NodeAddrs = []netip.Addr{n1v6}
				return in
			}(),
			want: bgpView{RouterID: "0.0.0.17",
				Routes: map[string][]string{
					"r4": {"10.9.0.1/32 via session", "fd00:9::1/128 via fd00:31::11"},
					"r6": {"fd00:9::1/128 via fd00:31::11"},
				},
				Services: map[string]string{"s1": "10.9.0.1/32,fd00:9::1/128 -> r4,r6"},
				Problems: []string{`this node has no IPv4 address: IPv4 prefixes are not sent to BGPPeer "r6" (fd00:31::1)`}},
		},
		{
			name: "sourceAddress is the next hop of its family",
			in: base(bgpConfig([]*model.Peer{{Name: "src", MyASN: 1, ASN: 2, Addr: netip.MustParseAddr("10.0.0.1"), SrcAddr: netip.MustParseAddr("10.0.0.5")}}, bgpAdv("a")),
				bgpSvc("s1", bgpIP1, bgpIP6)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"src": {"10.9.0.1/32 via 10.0.0.5", "fd00:9::1/128 via fd00:31::11"}},
				Services: map[string]string{"s1": "10.9.0.1/32,fd00:9::1/128 -> src"}},
		},
		{
			name: "router ID from a peer; another peer's is reported",
			in: base(bgpConfig([]*model.Peer{
				{Name: "a", MyASN: 1, ASN: 2, Addr: netip.MustParseAddr("10.0.0.1"), RouterID: netip.MustParseAddr("1.1.1.1")},
				{Name: "b", MyASN: 1, ASN: 2, Addr: netip.MustParseAddr("10.0.0.2"), RouterID: netip.MustParseAddr("2.2.2.2")},
			})),
			want: bgpView{RouterID: "1.1.1.1", Routes: map[string][]string{"a": {}, "b": {}}, Services: map[string]string{},
				Problems: []string{`BGPPeer "b" asks for router ID 2.2.2.2, but this node uses 1.1.1.1 from BGPPeer "a" (one router ID per node)`}},
		},
		{
			name: "two peers with one address: the first by name wins",
			in:   base(bgpConfig([]*model.Peer{routerV4, {Name: "z", MyASN: 1, ASN: 2, Addr: routerV4.Addr, Port: 1179}}, bgpAdv("a")), bgpSvc("s1", bgpIP1)),
			want: bgpView{RouterID: "172.31.255.11",
				Routes:   map[string][]string{"r4": {"10.9.0.1/32 via 172.31.255.11"}},
				Services: map[string]string{"s1": "10.9.0.1/32 -> r4"},
				Problems: []string{`BGPPeer "z" ignored on this node: BGPPeer "r4" has the same address 172.31.255.1 and also selects it`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := viewBGP(ComputeBGP(tt.in))
			if d := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ComputeBGP (-want +got):\n%s", d)
			}
		})
	}
}

// Every eligible node announces: with the same input seen from each node,
// each one sends the route with its own next hop (ECMP at the router).
func TestComputeBGPEveryNodeAnnounces(t *testing.T) {
	nodes := readyNodes("n1", "n2", "n3")
	cfg := bgpConfig([]*model.Peer{routerV4}, bgpAdv("a"))
	for i, name := range []string{"n1", "n2", "n3"} {
		self := netip.AddrFrom4([4]byte{172, 31, 255, byte(11 + i)})
		d := ComputeBGP(BGPInput{Config: cfg, Services: []Service{bgpSvc("s", bgpIP1)}, Nodes: nodes, NodeName: name, NodeAddrs: []netip.Addr{self}})
		want := []BGPRoute{{Prefix: netip.PrefixFrom(bgpIP1, 32), NextHop: self}}
		if len(d.Sessions) != 1 || !cmp.Equal(d.Sessions[0].Routes, want, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})) {
			t.Errorf("%s: sessions %+v, want one with %v", name, d.Sessions, want)
		}
	}
}

// BenchmarkComputeBGP: 10,000 Services, two peers, one advertisement.
func BenchmarkComputeBGP(b *testing.B) {
	pool := &model.Pool{Name: "bgp", Ranges: []model.Range{{First: netip.MustParseAddr("10.0.0.0"), Last: netip.MustParseAddr("10.0.255.255")}}}
	cfg := &model.Config{Pools: map[string]*model.Pool{"bgp": pool}, PoolOrder: []string{"bgp"},
		BGPAdvs: []*model.BGPAdvertisement{bgpAdv("a", func(a *model.BGPAdvertisement) { a.Pools = []string{"bgp"} })},
		Peers:   []*model.Peer{routerV4, routerV6}}
	in := BGPInput{Config: cfg, Nodes: readyNodes("n1", "n2", "n3"), NodeName: "n1", NodeAddrs: []netip.Addr{n1v4, n1v6}}
	for i := range 10000 {
		in.Services = append(in.Services, bgpSvc(fmt.Sprintf("s%d", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})))
	}
	b.ReportAllocs()
	for b.Loop() {
		d := ComputeBGP(in)
		if len(d.Sessions[0].Routes) != 10000 {
			b.Fatal(len(d.Sessions[0].Routes))
		}
	}
}
