package config

import (
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// validResources is a configuration using most features, with the model
// it must build to in validModel.
func validResources() Resources {
	return Resources{
		Pools: []v1beta1.IPAddressPool{
			pool("gold", "10.0.0.128/25", "10.0.0.0/25", "fd00::/120", "10.0.2.5 - 10.0.2.20", "10.0.2.0-10.0.2.9"),
			poolWith(pool("silver", "10.1.0.7/24"), func(p *v1beta1.IPAddressPool) {
				p.Labels = map[string]string{"tier": "silver"}
				p.Spec.AutoAssign = ptr(false)
				p.Spec.AvoidBuggyIPs = true
				p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{
					Priority:           10,
					Namespaces:         []string{"web", "api", "web"},
					NamespaceSelectors: []metav1.LabelSelector{labelSel("team", "a")},
					ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"x", "y"}}}}},
				}
			}),
			pool("v6only", "fd01::10-fd01::1f"),
		},
		L2Advs: []v1beta1.L2Advertisement{
			l2("all", nil),
			l2("some", func(s *v1beta1.L2AdvertisementSpec) {
				s.IPAddressPools = []string{"gold", "not-yet-created"}
				s.IPAddressPoolSelectors = []metav1.LabelSelector{labelSel("tier", "silver")}
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a")}
				s.Interfaces = []string{"eth1", "bond0", "eth1"}
			}),
			l2("none", func(s *v1beta1.L2AdvertisementSpec) { s.IPAddressPools = []string{"not-yet-created"} }),
		},
		BGPAdvs: []v1beta1.BGPAdvertisement{
			bgpAdv("default", nil),
			bgpAdv("tagged", func(s *v1beta1.BGPAdvertisementSpec) {
				s.IPAddressPools = []string{"silver", "v6only"}
				s.AggregationLength = ptr[int32](24)
				s.AggregationLengthV6 = ptr[int32](124)
				s.LocalPref = 200
				s.Communities = []string{"no-export", "large:1:2:3", "65000:100", "65535:65281", "LARGE:1:2:3"}
				s.Peers = []string{"ibgp", "ibgp"}
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a")}
			}),
		},
		Peers: []v1beta1.BGPPeer{
			peer("tor", "10.0.0.254", 64500, 64501, nil),
			peer("ibgp", "fd00::fe", 64500, 64500, func(s *v1beta1.BGPPeerSpec) {
				s.PeerPort = 1179
				s.SourceAddress = "fd00::1"
				s.RouterID = "10.9.9.9"
				s.HoldTime = dur(10 * time.Second)
				s.ConnectTime = dur(5 * time.Second)
				s.PasswordSecret = &v1beta1.SecretReference{Name: "bgp-auth"}
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a")}
				s.EnableGracefulRestart = true
			}),
			peer("nohold", "10.0.0.253", 64500, 64502, func(s *v1beta1.BGPPeerSpec) {
				s.HoldTime = dur(0)
				s.KeepaliveTime = dur(0)
				s.EBGPMultiHop = true
				s.Password = "pw"
			}),
		},
		Communities: []v1beta1.Community{community("wellknown", "no-export", "65535:65281")},
	}
}

func validModel() *model.Config {
	gold := &model.Pool{
		Name: "gold",
		Ranges: []model.Range{
			rng("10.0.0.0", "10.0.0.255"), rng("10.0.2.0", "10.0.2.20"), rng("fd00::", "fd00::ff"),
		},
		CIDRs: []netip.Prefix{
			prefix("10.0.0.0/24"), prefix("10.0.2.0/28"), prefix("10.0.2.16/30"), prefix("10.0.2.20/32"), prefix("fd00::/120"),
		},
		AutoAssign: true,
	}
	silver := &model.Pool{
		Name:          "silver",
		Labels:        map[string]string{"tier": "silver"},
		Ranges:        []model.Range{rng("10.1.0.0", "10.1.0.255")},
		CIDRs:         []netip.Prefix{prefix("10.1.0.0/24")},
		AvoidBuggyIPs: true,
		Allocation: &model.ServiceAllocation{
			Priority:           10,
			Namespaces:         []string{"api", "web"},
			NamespaceSelectors: []model.Selector{strSel("team=a")},
			ServiceSelectors:   []model.Selector{strSel("app in (x,y)")},
		},
	}
	v6only := &model.Pool{
		Name:       "v6only",
		Ranges:     []model.Range{rng("fd01::10", "fd01::1f")},
		CIDRs:      []netip.Prefix{prefix("fd01::10/124")},
		AutoAssign: true,
	}
	return &model.Config{
		Pools:     map[string]*model.Pool{"gold": gold, "silver": silver, "v6only": v6only},
		PoolOrder: []string{"gold", "silver", "v6only"},
		L2Advs: []*model.L2Advertisement{
			{Name: "all", Pools: []string{"gold", "silver", "v6only"}},
			{Name: "none"},
			{Name: "some", Pools: []string{"gold", "silver"}, NodeSelectors: []model.Selector{strSel("zone=a")}, Interfaces: []string{"bond0", "eth1"}},
		},
		BGPAdvs: []*model.BGPAdvertisement{
			{Name: "default", Pools: []string{"gold", "silver", "v6only"}, AggregationLength: 32, AggregationLengthV6: 128},
			{
				Name: "tagged", Pools: []string{"silver", "v6only"}, AggregationLength: 24, AggregationLengthV6: 124, LocalPref: 200,
				Communities: []model.Community{
					{Value: 65000<<16 | 100}, {Value: 65535<<16 | 65281}, {Large: true, Global: 1, Local1: 2, Local2: 3},
				},
				Peers:         []string{"ibgp"},
				NodeSelectors: []model.Selector{strSel("zone=a")},
			},
		},
		Peers: []*model.Peer{
			{
				Name: "ibgp", MyASN: 64500, ASN: 64500, Addr: addr("fd00::fe"), Port: 1179,
				SrcAddr: addr("fd00::1"), RouterID: addr("10.9.9.9"),
				HoldTime: 10 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 5 * time.Second,
				PasswordSecret:  &model.SecretRef{Namespace: testNS, Name: "bgp-auth"},
				NodeSelectors:   []model.Selector{strSel("zone=a")},
				GracefulRestart: true,
			},
			{
				Name: "nohold", MyASN: 64500, ASN: 64502, Addr: addr("10.0.0.253"), Port: 179,
				HoldTime: 0, KeepaliveTime: 0, ConnectTime: 10 * time.Second, Password: "pw", EBGPMultiHop: true,
			},
			{
				Name: "tor", MyASN: 64500, ASN: 64501, Addr: addr("10.0.0.254"), Port: 179,
				HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second,
			},
		},
	}
}

func TestBuildValid(t *testing.T) {
	res := validResources()
	before := validResources()
	got, err := Build(res, Options{Namespace: testNS})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if diff := cmp.Diff(validModel(), got, cmpModel); diff != "" {
		t.Errorf("Build model (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, res); diff != "" {
		t.Errorf("Build modified its input (-before +after):\n%s", diff)
	}
}

func TestBuildEmpty(t *testing.T) {
	got, err := Build(Resources{}, Options{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if diff := cmp.Diff(&model.Config{Pools: map[string]*model.Pool{}}, got, cmpModel); diff != "" {
		t.Errorf("Build model (-want +got):\n%s", diff)
	}
}

// TestBuildSelectorsMatch checks the selectors in the model are live,
// not just printable.
func TestBuildSelectorsMatch(t *testing.T) {
	cfg, err := Build(validResources(), Options{Namespace: testNS})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	alloc := cfg.Pools["silver"].Allocation
	tests := []struct {
		ns            string
		nsLabels, svc map[string]string
		want          bool
	}{
		{"web", nil, map[string]string{"app": "x"}, true},
		{"other", map[string]string{"team": "a"}, map[string]string{"app": "y"}, true},
		{"other", map[string]string{"team": "b"}, map[string]string{"app": "x"}, false},
		{"web", nil, map[string]string{"app": "z"}, false},
		{"web", nil, nil, false},
	}
	for _, tt := range tests {
		if got := alloc.Allows(tt.ns, tt.nsLabels, tt.svc); got != tt.want {
			t.Errorf("Allows(%q, %v, %v) = %v, want %v", tt.ns, tt.nsLabels, tt.svc, got, tt.want)
		}
	}
}

func TestBuildPeerTimers(t *testing.T) {
	tests := []struct {
		name                        string
		hold, keepalive, connect    *metav1.Duration
		wantHold, wantKeep, wantCon time.Duration
	}{
		{"defaults", nil, nil, nil, 90 * time.Second, 30 * time.Second, 10 * time.Second},
		{"keepalive a third, rounded down", dur(10 * time.Second), nil, nil, 10 * time.Second, 3 * time.Second, 10 * time.Second},
		{"minimum hold", dur(3 * time.Second), nil, nil, 3 * time.Second, time.Second, 10 * time.Second},
		{"hold 0 disables keepalives", dur(0), nil, nil, 0, 0, 10 * time.Second},
		{"explicit", dur(30 * time.Second), dur(29 * time.Second), dur(time.Second), 30 * time.Second, 29 * time.Second, time.Second},
		{"maximum hold", dur(65535 * time.Second), nil, nil, 65535 * time.Second, 21845 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := peer("p", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) {
				s.HoldTime, s.KeepaliveTime, s.ConnectTime = tt.hold, tt.keepalive, tt.connect
			})
			cfg, err := Build(Resources{Peers: []v1beta1.BGPPeer{p}}, Options{})
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			got := cfg.Peers[0]
			if got.HoldTime != tt.wantHold || got.KeepaliveTime != tt.wantKeep || got.ConnectTime != tt.wantCon {
				t.Errorf("timers = %v/%v/%v, want %v/%v/%v", got.HoldTime, got.KeepaliveTime, got.ConnectTime, tt.wantHold, tt.wantKeep, tt.wantCon)
			}
		})
	}
}

// TestBuildDynamicASN: dynamicASN internal is an iBGP peer of myASN;
// external has no AS (GoBGP takes the router's) and is eBGP.
func TestBuildDynamicASN(t *testing.T) {
	for _, tt := range []struct {
		mode     v1beta1.DynamicASNMode
		wantASN  uint32
		wantIBGP bool
	}{
		{v1beta1.DynamicASNInternal, 64500, true},
		{v1beta1.DynamicASNExternal, 0, false},
	} {
		p := peer("p", "10.0.0.1", 64500, 0, func(s *v1beta1.BGPPeerSpec) { s.DynamicASN = tt.mode })
		cfg, err := Build(Resources{Peers: []v1beta1.BGPPeer{p}}, Options{})
		if err != nil {
			t.Fatalf("%s: Build: %v", tt.mode, err)
		}
		got := cfg.Peers[0]
		if got.ASN != tt.wantASN || got.IBGP() != tt.wantIBGP || string(got.Dynamic) != string(tt.mode) {
			t.Errorf("%s: ASN %d, iBGP %v, Dynamic %q; want %d, %v, %q", tt.mode, got.ASN, got.IBGP(), got.Dynamic, tt.wantASN, tt.wantIBGP, tt.mode)
		}
	}
}

// TestBuildBFDProfile: a peer's profile is resolved with defaults (300 ms,
// multiplier 3, minimum TTL 254) or the values given.
func TestBuildBFDProfile(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	yes := true
	res := Resources{
		BFDProfiles: []v1beta1.BFDProfile{
			{ObjectMeta: meta("default")},
			{ObjectMeta: meta("fast"), Spec: v1beta1.BFDProfileSpec{ReceiveInterval: u(50), TransmitInterval: u(100),
				DetectMultiplier: u(5), MinimumTTL: u(250), PassiveMode: &yes}},
		},
		Peers: []v1beta1.BGPPeer{
			peer("a", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "default" }),
			peer("b", "10.0.0.2", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" }),
			peer("c", "10.0.0.3", 1, 2, nil),
		},
	}
	cfg, err := Build(res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []*model.BFDProfile{
		{Name: "default", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254},
		{Name: "fast", ReceiveInterval: 50 * time.Millisecond, TransmitInterval: 100 * time.Millisecond, DetectMultiplier: 5, MinimumTTL: 250, Passive: true},
		nil,
	}
	for i, p := range cfg.Peers {
		if d := cmp.Diff(want[i], p.BFD); d != "" {
			t.Errorf("peer %s BFD (-want +got):\n%s", p.Name, d)
		}
	}
}

// shuffled returns a copy of res with every list in a random order.
func shuffled(res Resources, r *rand.Rand) Resources {
	out := res
	out.Pools = shuffle(r, res.Pools)
	out.L2Advs = shuffle(r, res.L2Advs)
	out.BGPAdvs = shuffle(r, res.BGPAdvs)
	out.Peers = shuffle(r, res.Peers)
	out.Communities = shuffle(r, res.Communities)
	return out
}

func shuffle[T any](r *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestBuildDeterministic(t *testing.T) {
	invalid := validResources()
	invalid.Pools = append(invalid.Pools,
		pool("bad", "10.0.0.300/24", "10.1.0.0/16"),
		pool("worse", "10.0.0.9-10.0.0.1", "10.1.0.128/25"),
	)
	invalid.Peers = append(invalid.Peers, peer("tor2", "10.0.0.254", 64500, 64501, nil), peer("zero", "", 0, 0, nil))
	invalid.BGPAdvs = append(invalid.BGPAdvs,
		bgpAdv("clash", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 7 }),
		bgpAdv("clash2", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"nope", "65000:1"} }),
	)
	invalid.Communities = append(invalid.Communities, community("again", "no-export", "1:1"), community("a2", "no-export", "1:2"))
	invalid.ConfigMap = &LegacyData{Data: "address-pools:\n- name: gold\n  protocol: layer2\n  addresses: [10.9.0.0/24]\n- name: cm\n  protocol: bgp\n  addresses: [10.0.0.0/8]\n"}

	for _, tt := range []struct {
		name string
		res  Resources
	}{{"valid", validResources()}, {"invalid", invalid}} {
		t.Run(tt.name, func(t *testing.T) {
			wantCfg, wantErr := Build(tt.res, Options{})
			if tt.name == "invalid" && wantErr == nil {
				t.Fatal("Build succeeded on invalid input")
			}
			r := rand.New(rand.NewSource(1))
			for i := range 50 {
				cfg, err := Build(shuffled(tt.res, r), Options{})
				if diff := cmp.Diff(wantCfg, cfg, cmpModel); diff != "" {
					t.Fatalf("shuffle %d: model differs (-first +now):\n%s", i, diff)
				}
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("shuffle %d: error differs:\n%v\nfirst:\n%v", i, err, wantErr)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	_, err := Build(Resources{Pools: []v1beta1.IPAddressPool{pool("gold", "10.0.0.0/24", "10.0.0.300/24")}}, Options{})
	wrapped := fmt.Errorf("reconcile: %w", err)
	want := []ObjectError{{Kind: "IPAddressPool", Namespace: testNS, Name: "gold", Field: "spec.addresses[1]",
		Message: `"10.0.0.300/24" is neither a CIDR nor a first-last range`}}
	if diff := cmp.Diff(want, Errors(wrapped)); diff != "" {
		t.Errorf("Errors (-want +got):\n%s", diff)
	}
	const wantText = `IPAddressPool "gold": spec.addresses[1]: "10.0.0.300/24" is neither a CIDR nor a first-last range`
	if err.Error() != wantText {
		t.Errorf("Error() = %q, want %q", err.Error(), wantText)
	}
	if Errors(errors.New("other")) != nil || Errors(nil) != nil {
		t.Error("Errors of a foreign error is not nil")
	}
}

func TestWith(t *testing.T) {
	res := Resources{Pools: []v1beta1.IPAddressPool{pool("a", "10.0.0.0/24"), pool("b", "10.0.1.0/24")}}
	changed := pool("b", "10.0.0.128/25")
	got, err := res.With(&changed)
	if err != nil {
		t.Fatalf("With: %v", err)
	}
	if got.Pools[1].Spec.Addresses[0] != "10.0.0.128/25" || res.Pools[1].Spec.Addresses[0] != "10.0.1.0/24" {
		t.Fatalf("With did not replace b in a copy: got %v, original %v", got.Pools, res.Pools)
	}
	if _, err := Build(got, Options{}); err == nil {
		t.Error("Build With the overlapping pool succeeded")
	}
	added := peer("p", "10.0.0.1", 1, 2, nil)
	if got, _ = res.With(&added); len(got.Peers) != 1 || len(res.Peers) != 0 {
		t.Errorf("With did not add the peer to a copy")
	}
	if _, err := res.With(&v1beta1.ServiceL2Status{}); err == nil {
		t.Error("With accepted a status object")
	}
}

func TestWithout(t *testing.T) {
	res := Resources{
		Pools:       []v1beta1.IPAddressPool{pool("a", "10.0.0.0/24"), pool("b", "10.0.1.0/24")},
		Communities: []v1beta1.Community{community("c", "x", "1:1")},
		BGPAdvs: []v1beta1.BGPAdvertisement{bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"x"}
		})},
	}
	tests := []struct {
		name  string
		obj   any
		pools []string
		errs  []string
	}{
		{"pool", ptr(pool("a", "")), []string{"b"}, nil},
		{"unknown name", ptr(pool("zzz", "")), []string{"a", "b"}, nil},
		{"other namespace", ptr(poolWith(pool("a", ""), func(p *v1beta1.IPAddressPool) { p.Namespace = "x" })), []string{"a", "b"}, nil},
		{"community in use", ptr(community("c")), []string{"a", "b"}, []string{
			`BGPAdvertisement "adv": spec.communities[0]: "x" is neither a community value nor an alias defined in a Community object`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := res.Without(tt.obj)
			if err != nil {
				t.Fatalf("Without: %v", err)
			}
			var names []string
			for _, p := range got.Pools {
				names = append(names, p.Name)
			}
			if diff := cmp.Diff(tt.pools, names); diff != "" {
				t.Errorf("pools (-want +got):\n%s", diff)
			}
			_, err = Build(got, Options{})
			var msgs []string
			for _, e := range Errors(err) {
				msgs = append(msgs, e.Error())
			}
			if diff := cmp.Diff(tt.errs, msgs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	if len(res.Pools) != 2 || len(res.Communities) != 1 {
		t.Error("Without modified its receiver")
	}
	if _, err := res.Without(&v1beta1.ServiceL2Status{}); err == nil {
		t.Error("Without accepted a status object")
	}
}

func TestNaturalCompare(t *testing.T) {
	in := []string{"a[10]", "a[2]", "a[2].b", "a", "a[02]", "b[1]", "a[1][10]", "a[1][9]"}
	want := []string{"a", "a[1][9]", "a[1][10]", "a[2]", "a[2].b", "a[02]", "a[10]", "b[1]"}
	got := append([]string(nil), in...)
	for i := range got { // insertion sort to use only naturalCompare
		for j := i; j > 0 && naturalCompare(got[j-1], got[j]) > 0; j-- {
			got[j-1], got[j] = got[j], got[j-1]
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sorted = %v, want %v", got, want)
	}
}
