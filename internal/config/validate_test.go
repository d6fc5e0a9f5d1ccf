package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config/legacy"
	"github.com/herald-lb/herald/internal/model"
)

// buildErrors runs Build and returns its error lines, failing the test if
// Build returned a model with an error or no model without one.
func buildErrors(t *testing.T, res Resources) []string {
	t.Helper()
	cfg, err := Build(res, Options{Namespace: testNS})
	if err == nil {
		if cfg == nil {
			t.Fatal("Build returned neither model nor error")
		}
		return nil
	}
	if cfg != nil {
		t.Fatal("Build returned a model with an error")
	}
	if Errors(err) == nil {
		t.Fatalf("Build error %v is not a *config.Error", err)
	}
	return strings.Split(err.Error(), "\n")
}

type errorCase struct {
	name string
	res  Resources
	want []string // exact lines; nil means valid
}

func runErrorCases(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, buildErrors(t, tt.res)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func pools(ps ...v1beta1.IPAddressPool) Resources { return Resources{Pools: ps} }

func TestBuildPoolErrors(t *testing.T) {
	alloc := func(sa v1beta1.ServiceAllocation) v1beta1.IPAddressPool {
		return poolWith(pool("a", "10.0.0.0/24"), func(p *v1beta1.IPAddressPool) { p.Spec.ServiceAllocation = &sa })
	}
	runErrorCases(t, []errorCase{
		{"bad CIDR", pools(pool("gold", "10.0.0.0/24", "10.0.0.300/24")), []string{
			`IPAddressPool "gold": spec.addresses[1]: "10.0.0.300/24" is neither a CIDR nor a first-last range`}},
		{"reversed range", pools(pool("a", "10.0.0.9-10.0.0.1")), []string{
			`IPAddressPool "a": spec.addresses[0]: range "10.0.0.9-10.0.0.1": 10.0.0.9 is after 10.0.0.1`}},
		{"mixed range", pools(pool("a", "10.0.0.1-fd00::1")), []string{
			`IPAddressPool "a": spec.addresses[0]: range "10.0.0.1-fd00::1" mixes IPv4 and IPv6`}},
		{"mapped", pools(pool("a", "::ffff:10.0.0.0/120")), []string{
			`IPAddressPool "a": spec.addresses[0]: CIDR "::ffff:10.0.0.0/120": ::ffff:10.0.0.0 is an IPv4-mapped IPv6 address; write 10.0.0.0`}},
		{"no addresses", pools(pool("a")), []string{
			`IPAddressPool "a": spec.addresses: at least one address is required`}},
		{"every bad address reported", pools(pool("a", "x", "10.0.0.0/24", "y")), []string{
			`IPAddressPool "a": spec.addresses[0]: "x" is neither a CIDR nor a first-last range`,
			`IPAddressPool "a": spec.addresses[2]: "y" is neither a CIDR nor a first-last range`}},
		{"overlap within a pool is merged", pools(pool("a", "10.0.0.0/24", "10.0.0.5-10.0.0.9")), nil},
		{"overlapping pools", pools(pool("b", "10.0.0.128/25"), pool("a", "10.0.0.0/24")), []string{
			`IPAddressPool "a": spec.addresses[0]: "10.0.0.0/24" overlaps "10.0.0.128/25" of pool "b"`,
			`IPAddressPool "b": spec.addresses[0]: "10.0.0.128/25" overlaps "10.0.0.0/24" of pool "a"`}},
		{"overlapping ranges", pools(pool("a", "fd00::1-fd00::9"), pool("b", "fd00::/125", "fd00::9-fd00::10")), []string{
			`IPAddressPool "a": spec.addresses[0]: "fd00::1-fd00::9" overlaps "fd00::/125" of pool "b"`,
			`IPAddressPool "b": spec.addresses[0]: "fd00::/125" overlaps "fd00::1-fd00::9" of pool "a"`}},
		{"adjacent pools", pools(pool("a", "10.0.0.0/25"), pool("b", "10.0.0.128/25")), nil},
		{"negative priority", pools(alloc(v1beta1.ServiceAllocation{Priority: -1})), []string{
			`IPAddressPool "a": spec.serviceAllocation.priority: -1 is negative`}},
		{"bad namespace", pools(alloc(v1beta1.ServiceAllocation{Namespaces: []string{"ok", "Not_OK"}})), []string{
			`IPAddressPool "a": spec.serviceAllocation.namespaces[1]: "Not_OK" is not a namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`}},
		{"bad namespace selector", pools(alloc(v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{
			labelSel("a", "b"),
			{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}},
		}})), []string{
			`IPAddressPool "a": spec.serviceAllocation.namespaceSelectors[1].matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator`}},
		{"bad service selector", pools(alloc(v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{
			{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpIn}}},
		}})), []string{
			`IPAddressPool "a": spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].values: Required value: must be specified when ` + "`operator` is 'In' or 'NotIn'"}},
		{"wrong namespace", pools(poolWith(pool("a", "10.0.0.0/24"), func(p *v1beta1.IPAddressPool) { p.Namespace = "default" })), []string{
			`IPAddressPool "a": metadata.namespace: "default" is not herald-system; objects must live in herald-system`}},
		{"no namespace", pools(poolWith(pool("a", "10.0.0.0/24"), func(p *v1beta1.IPAddressPool) { p.Namespace = "" })), []string{
			`IPAddressPool "a": metadata.namespace: required; objects must live in herald-system`}},
		{"wrong namespace does not clash", pools(pool("a", "10.0.0.0/24"), poolWith(pool("a", "10.0.0.0/24"), func(p *v1beta1.IPAddressPool) { p.Namespace = "x" })), []string{
			`IPAddressPool "a": metadata.namespace: "x" is not herald-system; objects must live in herald-system`}},
		{"same name twice", pools(pool("a", "10.0.0.0/24"), pool("a", "10.1.0.0/24")), []string{
			`IPAddressPool "a": metadata.name: another IPAddressPool has the same name`}},
	})
}

func TestBuildL2Errors(t *testing.T) {
	withIfaces := func(ifaces ...string) Resources {
		return Resources{L2Advs: []v1beta1.L2Advertisement{l2("l2", func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = ifaces })}}
	}
	runErrorCases(t, []errorCase{
		{"good interfaces", withIfaces("eth0", "bond0.100", "enp0s31f6", "a-15-char-name1"), nil},
		{"empty interface", withIfaces("eth0", ""), []string{`L2Advertisement "l2": spec.interfaces[1]: "" is empty`}},
		{"long interface", withIfaces("a-16-char-name12"), []string{`L2Advertisement "l2": spec.interfaces[0]: "a-16-char-name12" is longer than 15 characters`}},
		{"slash", withIfaces("eth0/1"), []string{`L2Advertisement "l2": spec.interfaces[0]: "eth0/1" contains '/', ':' or whitespace`}},
		{"space", withIfaces("eth 0"), []string{`L2Advertisement "l2": spec.interfaces[0]: "eth 0" contains '/', ':' or whitespace`}},
		{"alias label", withIfaces("eth0:1"), []string{`L2Advertisement "l2": spec.interfaces[0]: "eth0:1" contains '/', ':' or whitespace`}},
		{"dot", withIfaces(".."), []string{`L2Advertisement "l2": spec.interfaces[0]: ".." is not an interface name`}},
		{"missing pool is fine", Resources{L2Advs: []v1beta1.L2Advertisement{l2("l2", func(s *v1beta1.L2AdvertisementSpec) { s.IPAddressPools = []string{"later"} })}}, nil},
		{"bad node selector", Resources{L2Advs: []v1beta1.L2Advertisement{l2("l2", func(s *v1beta1.L2AdvertisementSpec) {
			s.NodeSelectors = []metav1.LabelSelector{labelSel("bad key!", "v")}
		})}}, []string{
			`L2Advertisement "l2": spec.nodeSelectors[0].matchLabels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`}},
		{"bad pool selector", Resources{L2Advs: []v1beta1.L2Advertisement{l2("l2", func(s *v1beta1.L2AdvertisementSpec) {
			s.IPAddressPoolSelectors = []metav1.LabelSelector{labelSel("k", "bad value!")}
		})}}, []string{
			`L2Advertisement "l2": spec.ipAddressPoolSelectors[0].matchLabels: Invalid value: "bad value!": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
	})
}

func TestBuildBGPAdvertisementErrors(t *testing.T) {
	res := func(advs ...v1beta1.BGPAdvertisement) Resources {
		return Resources{
			Pools: []v1beta1.IPAddressPool{
				pool("a", "10.0.0.0/24", "fd00::/120"),
				pool("r", "10.1.0.10-10.1.0.20"),
			},
			Peers: []v1beta1.BGPPeer{
				peer("ebgp", "10.9.0.1", 64500, 65000, nil),
				peer("ibgp", "10.9.0.2", 64500, 64500, nil),
				peer("broken", "10.9.0.3", 0, 1, nil),
				peer("dyn-ext", "10.9.0.4", 64500, 0, func(s *v1beta1.BGPPeerSpec) { s.DynamicASN = v1beta1.DynamicASNExternal }),
				peer("dyn-int", "10.9.0.5", 64500, 0, func(s *v1beta1.BGPPeerSpec) { s.DynamicASN = v1beta1.DynamicASNInternal }),
			},
			Communities: []v1beta1.Community{community("c", "tag", "64500:1", "broken", "x:y")},
			BGPAdvs:     advs,
		}
	}
	broken := []string{
		`BGPPeer "broken": spec.myASN: required (non-zero)`,
		`Community "c": spec.communities[1].value: "x:y" is not a community: both parts must be numbers from 0 to 65535`,
	}
	with := func(lines ...string) []string { return append(lines, broken...) }
	adv := func(mod func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
		return bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"a"}; mod(s) })
	}
	runErrorCases(t, []errorCase{
		{"baseline", res(adv(func(*v1beta1.BGPAdvertisementSpec) {})), broken},
		{"aggregationLength too long", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr[int32](33) })), with(
			`BGPAdvertisement "adv": spec.aggregationLength: 33 is not between 0 and 32`)},
		{"aggregationLength negative", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr[int32](-1) })), with(
			`BGPAdvertisement "adv": spec.aggregationLength: -1 is not between 0 and 32`)},
		{"aggregationLengthV6 too long", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLengthV6 = ptr[int32](129) })), with(
			`BGPAdvertisement "adv": spec.aggregationLengthV6: 129 is not between 0 and 128`)},
		{"aggregationLength shorter than pool", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr[int32](16) })), with(
			`BGPAdvertisement "adv": spec.aggregationLength: aggregationLength 16 is shorter than pool "a" prefix 10.0.0.0/24`)},
		{"aggregationLength equal to pool", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr[int32](24) })), broken},
		{"aggregationLengthV6 shorter than pool", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLengthV6 = ptr[int32](64) })), with(
			`BGPAdvertisement "adv": spec.aggregationLengthV6: aggregationLengthV6 64 is shorter than pool "a" prefix fd00::/120`)},
		{"aggregation of a range pool", res(adv(func(s *v1beta1.BGPAdvertisementSpec) {
			s.IPAddressPools = []string{"r"}
			s.AggregationLength = ptr[int32](30)
		})), with(
			`BGPAdvertisement "adv": spec.aggregationLength: aggregationLength 30 is shorter than pool "r" prefix 10.1.0.10/31`)},
		{"aggregation of pools by selector", res(bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr[int32](24) })), with(
			`BGPAdvertisement "adv": spec.aggregationLength: aggregationLength 24 is shorter than pool "r" prefix 10.1.0.10/31`)},
		{"communities", res(adv(func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"65000:100", "tag", "Large:1:2:3", "65000:70000", "1:2:3", "large:1:2", "large:1:2:4294967296", "nope", "broken", ""}
		})), with(
			`BGPAdvertisement "adv": spec.communities[3]: "65000:70000" is not a community: both parts must be numbers from 0 to 65535`,
			`BGPAdvertisement "adv": spec.communities[4]: "1:2:3" is not a community ("65000:100" or "large:1:2:3")`,
			`BGPAdvertisement "adv": spec.communities[5]: "large:1:2" is not a community ("65000:100" or "large:1:2:3")`,
			`BGPAdvertisement "adv": spec.communities[6]: "large:1:2:4294967296" is not a large community: all three parts must be numbers from 0 to 4294967295`,
			`BGPAdvertisement "adv": spec.communities[7]: "nope" is neither a community value nor an alias defined in a Community object`,
			`BGPAdvertisement "adv": spec.communities[9]: "" is neither a community value nor an alias defined in a Community object`)},
		{"unknown peer is not an error", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"ibgp", "gone", "broken"} })), broken},
		{"localPref to eBGP peer", res(adv(func(s *v1beta1.BGPAdvertisementSpec) {
			s.Peers = []string{"ibgp", "ebgp"}
			s.LocalPref = 100
		})), with(
			`BGPAdvertisement "adv": spec.localPref: localPref is only for iBGP peers, but spec.peers[1] "ebgp" is eBGP (myASN 64500, peerASN 65000)`)},
		{"localPref to dynamic peers", res(adv(func(s *v1beta1.BGPAdvertisementSpec) {
			s.Peers = []string{"dyn-int", "dyn-ext"}
			s.LocalPref = 100
		})), with(
			`BGPAdvertisement "adv": spec.localPref: localPref is only for iBGP peers, but spec.peers[1] "dyn-ext" is eBGP (myASN 64500, dynamicASN external)`)},
		{"localPref to all peers", res(adv(func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 100 })), broken},
		{"bad node selector", res(adv(func(s *v1beta1.BGPAdvertisementSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpExists, Values: []string{"v"}}}}}
		})), with(
			`BGPAdvertisement "adv": spec.nodeSelectors[0].matchExpressions[0].values: Forbidden: may not be specified when ` + "`operator` is 'Exists' or 'DoesNotExist'")},
	})
}

func TestBuildBGPConflicts(t *testing.T) {
	res := func(advs ...v1beta1.BGPAdvertisement) Resources {
		return Resources{
			Pools: []v1beta1.IPAddressPool{pool("p", "10.0.0.0/24"), pool("q", "fd00::/120")},
			Peers: []v1beta1.BGPPeer{
				peer("r1", "10.9.0.1", 64500, 64500, nil),
				peer("r2", "10.9.0.2", 64500, 64500, nil),
			},
			BGPAdvs: advs,
		}
	}
	adv := func(name string, mod func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
		return bgpAdv(name, func(s *v1beta1.BGPAdvertisementSpec) {
			s.IPAddressPools = []string{"p"}
			if mod != nil {
				mod(s)
			}
		})
	}
	pref := func(n uint32) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = n }
	}
	runErrorCases(t, []errorCase{
		{"same attributes", res(adv("a", nil), adv("b", nil)), nil},
		{"localPref", res(adv("b", pref(200)), adv("a", pref(100))), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 200 here and 100 there`}},
		{"communities", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"1:1"} }),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"1:1", "large:1:1:1"} }),
		), []string{
			`BGPAdvertisement "b": spec.communities: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with communities [1:1 large:1:1:1] here and [1:1] there`}},
		{"same communities in another order", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"2:2", "1:1"} }),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"1:1", "2:2", "1:1"} }),
		), nil},
		{"IPv6 pool", res(
			bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"q"} }),
			bgpAdv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"q"}; s.LocalPref = 1 }),
		), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "q": both announce IPv6 /128 prefixes to the same peers, from nodes both may select, but with localPref 1 here and 0 there`}},
		{"different aggregation", res(adv("a", pref(1)), adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
			s.AggregationLength = ptr[int32](24)
		})), nil},
		{"same IPv4 aggregation, pool has no IPv6", res(adv("a", pref(1)), adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
			s.AggregationLengthV6 = ptr[int32](120)
		})), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 0 here and 1 there`}},
		{"disjoint peers", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"r1"}; s.LocalPref = 1 }),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"r2"}; s.LocalPref = 2 }),
		), nil},
		{"all peers overlap some", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 1 }),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"r2"}; s.LocalPref = 2 }),
		), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`}},
		{"different node selectors", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a")}
				s.LocalPref = 1
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "b")}
				s.LocalPref = 2
			}),
		), nil},
		{"node selectors on different labels may both match a node", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a")}
				s.Communities = []string{"65000:100"}
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("rack", "1")}
				s.Communities = []string{"65000:200"}
			}),
		), []string{
			`BGPAdvertisement "b": spec.communities: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with communities [65000:200] here and [65000:100] there`}},
		{"matchLabels and In select the same nodes", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a")}
				s.LocalPref = 1
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}}
				s.LocalPref = 2
			}),
		), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`}},
		{"an empty selector selects every node", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{{}}
				s.LocalPref = 1
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("rack", "1")}
				s.LocalPref = 2
			}),
		), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`}},
		{"contradicting expressions", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{
					{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}},
					{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "edge", Operator: metav1.LabelSelectorOpExists}}},
				}
				s.LocalPref = 1
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{{
					MatchLabels: map[string]string{"zone": "c"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "edge", Operator: metav1.LabelSelectorOpDoesNotExist},
						{Key: "rack", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"1"}}},
				}}
				s.LocalPref = 2
			}),
		), nil},
		{"In against NotIn of all its values", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}}
				s.LocalPref = 1
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "zone", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"b", "a"}}}}}
				s.LocalPref = 2
			}),
		), nil},
		{"identical node selectors", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "a"), labelSel("rack", "1")}
				s.LocalPref = 1
			}),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("rack", "1"), labelSel("zone", "a")}
				s.LocalPref = 2
			}),
		), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`}},
		{"one without node selectors", res(
			adv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 1 }),
			adv("b", func(s *v1beta1.BGPAdvertisementSpec) {
				s.NodeSelectors = []metav1.LabelSelector{labelSel("zone", "b")}
				s.LocalPref = 2
			}),
		), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`}},
		{"three-way", res(adv("a", pref(1)), adv("b", pref(2)), adv("c", pref(1))), []string{
			`BGPAdvertisement "b": spec.localPref: conflicts with BGPAdvertisement "a" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`,
			`BGPAdvertisement "c": spec.localPref: conflicts with BGPAdvertisement "b" on pool "p": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 1 here and 2 there`}},
		{"different pools", res(adv("a", pref(1)), bgpAdv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"q"}; s.LocalPref = 2 })), nil},
	})
}

func TestBuildPeerErrors(t *testing.T) {
	one := func(mod func(*v1beta1.BGPPeerSpec)) Resources {
		return Resources{Peers: []v1beta1.BGPPeer{peer("p", "10.0.0.1", 64500, 64501, mod)}}
	}
	runErrorCases(t, []errorCase{
		{"valid", one(nil), nil},
		{"no ASNs", one(func(s *v1beta1.BGPPeerSpec) { s.MyASN, s.PeerASN = 0, 0 }), []string{
			`BGPPeer "p": spec.myASN: required (non-zero)`,
			`BGPPeer "p": spec.peerASN: required (non-zero) unless dynamicASN is set`}},
		{"dynamic external", one(func(s *v1beta1.BGPPeerSpec) { s.PeerASN, s.DynamicASN = 0, v1beta1.DynamicASNExternal }), nil},
		{"dynamic internal", one(func(s *v1beta1.BGPPeerSpec) { s.PeerASN, s.DynamicASN = 0, v1beta1.DynamicASNInternal }), nil},
		{"dynamic and peerASN", one(func(s *v1beta1.BGPPeerSpec) { s.DynamicASN = v1beta1.DynamicASNExternal }), []string{
			`BGPPeer "p": spec.dynamicASN: set only one of peerASN and dynamicASN`}},
		{"dynamic unknown", one(func(s *v1beta1.BGPPeerSpec) { s.PeerASN, s.DynamicASN = 0, "any" }), []string{
			`BGPPeer "p": spec.dynamicASN: "any" is neither internal nor external`}},
		{"multihop dynamic internal", one(func(s *v1beta1.BGPPeerSpec) {
			s.PeerASN, s.DynamicASN, s.EBGPMultiHop = 0, v1beta1.DynamicASNInternal, true
		}), []string{`BGPPeer "p": spec.ebgpMultiHop: ebgpMultiHop is for eBGP peers; dynamicASN is internal`}},
		{"multihop dynamic external", one(func(s *v1beta1.BGPPeerSpec) {
			s.PeerASN, s.DynamicASN, s.EBGPMultiHop = 0, v1beta1.DynamicASNExternal, true
		}), nil},
		{"no address", one(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "" }), []string{`BGPPeer "p": spec.peerAddress: required`}},
		{"bad address", one(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "router1" }), []string{`BGPPeer "p": spec.peerAddress: "router1" is not an IP address`}},
		{"zone", one(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "fe80::1%eth0" }), []string{`BGPPeer "p": spec.peerAddress: fe80::1%eth0 has a zone; zones are not allowed`}},
		{"mapped", one(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "::ffff:10.0.0.1" }), []string{`BGPPeer "p": spec.peerAddress: ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address; write 10.0.0.1`}},
		{"unspecified", one(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "::" }), []string{`BGPPeer "p": spec.peerAddress: :: is the unspecified address`}},
		{"IPv6 peer", one(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "fd00::1"; s.SourceAddress = "fd00::2" }), nil},
		{"source family", one(func(s *v1beta1.BGPPeerSpec) { s.SourceAddress = "fd00::2" }), []string{
			`BGPPeer "p": spec.sourceAddress: fd00::2 and peerAddress 10.0.0.1 are of different families`}},
		{"bad source", one(func(s *v1beta1.BGPPeerSpec) { s.SourceAddress = "10.0.0.256" }), []string{
			`BGPPeer "p": spec.sourceAddress: "10.0.0.256" is not an IP address`}},
		{"router ID IPv6", one(func(s *v1beta1.BGPPeerSpec) { s.RouterID = "fd00::1" }), []string{
			`BGPPeer "p": spec.routerID: "fd00::1" is not a non-zero IPv4 address`}},
		{"router ID zero", one(func(s *v1beta1.BGPPeerSpec) { s.RouterID = "0.0.0.0" }), []string{
			`BGPPeer "p": spec.routerID: "0.0.0.0" is not a non-zero IPv4 address`}},
		{"hold too short", one(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(2 * time.Second) }), []string{
			`BGPPeer "p": spec.holdTime: 2s is neither 0 nor between 3s and 65535s`}},
		{"hold too long", one(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(65536 * time.Second) }), []string{
			`BGPPeer "p": spec.holdTime: 18h12m16s is neither 0 nor between 3s and 65535s`}},
		{"hold fraction", one(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(4500 * time.Millisecond) }), []string{
			`BGPPeer "p": spec.holdTime: 4.5s is not a whole number of seconds`}},
		{"hold negative", one(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(-time.Second) }), []string{
			`BGPPeer "p": spec.holdTime: -1s is negative`}},
		{"keepalive alone", one(func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = dur(60 * time.Second) }), nil},
		{"keepalive alone too long", one(func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = dur(30000 * time.Second) }), []string{
			`BGPPeer "p": spec.keepaliveTime: 8h20m0s would make holdTime (3 × keepaliveTime when holdTime is not set) above 65535s`}},
		{"keepalive not below hold", one(func(s *v1beta1.BGPPeerSpec) { s.HoldTime, s.KeepaliveTime = dur(90*time.Second), dur(90*time.Second) }), []string{
			`BGPPeer "p": spec.keepaliveTime: 1m30s is not less than holdTime 1m30s`}},
		{"keepalive zero", one(func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = dur(0) }), []string{
			`BGPPeer "p": spec.keepaliveTime: must be positive`}},
		{"keepalive fraction", one(func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = dur(time.Millisecond) }), []string{
			`BGPPeer "p": spec.keepaliveTime: 1ms is not a whole number of seconds`}},
		{"keepalive without hold", one(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(0); s.KeepaliveTime = dur(time.Second) }), []string{
			`BGPPeer "p": spec.keepaliveTime: 1s: keepalives are off when holdTime is 0; remove keepaliveTime`}},
		{"connect zero", one(func(s *v1beta1.BGPPeerSpec) { s.ConnectTime = dur(0) }), []string{
			`BGPPeer "p": spec.connectTime: must be positive`}},
		{"connect fraction", one(func(s *v1beta1.BGPPeerSpec) { s.ConnectTime = dur(1500 * time.Millisecond) }), []string{
			`BGPPeer "p": spec.connectTime: 1.5s is not a whole number of seconds`}},
		{"password and secret", one(func(s *v1beta1.BGPPeerSpec) {
			s.Password = "x"
			s.PasswordSecret = &v1beta1.SecretReference{Name: "s"}
		}), []string{`BGPPeer "p": spec.passwordSecret: set only one of password and passwordSecret`}},
		{"secret elsewhere", one(func(s *v1beta1.BGPPeerSpec) {
			s.PasswordSecret = &v1beta1.SecretReference{Name: "s", Namespace: "default"}
		}), []string{
			`BGPPeer "p": spec.passwordSecret.namespace: "default" is not herald-system; the Secret must live in herald-system`}},
		{"secret here", one(func(s *v1beta1.BGPPeerSpec) {
			s.PasswordSecret = &v1beta1.SecretReference{Name: "s", Namespace: testNS}
		}), nil},
		{"secret without name", one(func(s *v1beta1.BGPPeerSpec) { s.PasswordSecret = &v1beta1.SecretReference{} }), []string{
			`BGPPeer "p": spec.passwordSecret.name: required`}},
		{"long password", one(func(s *v1beta1.BGPPeerSpec) { s.Password = strings.Repeat("x", 81) }), []string{
			`BGPPeer "p": spec.password: longer than 80 bytes, the TCP MD5 key limit`}},
		{"multihop iBGP", one(func(s *v1beta1.BGPPeerSpec) { s.PeerASN = 64500; s.EBGPMultiHop = true }), []string{
			`BGPPeer "p": spec.ebgpMultiHop: ebgpMultiHop is for eBGP peers; myASN equals peerASN`}},
		{"bad node selector", one(func(s *v1beta1.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{labelSel("", "x")} }), []string{
			`BGPPeer "p": spec.nodeSelectors[0].matchLabels: Invalid value: "": name part must be non-empty`,
			`BGPPeer "p": spec.nodeSelectors[0].matchLabels: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`}},
		{"same session", Resources{Peers: []v1beta1.BGPPeer{
			peer("b", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{labelSel("z", "1")} }),
			peer("a", "10.0.0.1", 3, 4, func(s *v1beta1.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{labelSel("z", "1")} }),
		}}, []string{`BGPPeer "b": spec.peerAddress: same peerAddress, peerPort and nodeSelectors as BGPPeer "a"`}},
		{"same address, other port", Resources{Peers: []v1beta1.BGPPeer{
			peer("a", "10.0.0.1", 1, 2, nil),
			peer("b", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.PeerPort = 1179 }),
		}}, nil},
		{"same address, explicit default port", Resources{Peers: []v1beta1.BGPPeer{
			peer("a", "10.0.0.1", 1, 2, nil),
			peer("b", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.PeerPort = 179 }),
		}}, []string{`BGPPeer "b": spec.peerAddress: same peerAddress, peerPort and nodeSelectors as BGPPeer "a"`}},
		{"same address, other nodes", Resources{Peers: []v1beta1.BGPPeer{
			peer("a", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{labelSel("z", "1")} }),
			peer("b", "10.0.0.1", 1, 2, func(s *v1beta1.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{labelSel("z", "2")} }),
		}}, nil},
	})
}

func TestBuildCommunityErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"valid", Resources{Communities: []v1beta1.Community{community("c", "a", "1:1", "b", "large:1:2:3")}}, nil},
		{"bad values", Resources{Communities: []v1beta1.Community{community("c", "a", "1:65536", "b", "large:1:2", "c", "65000")}}, []string{
			`Community "c": spec.communities[0].value: "1:65536" is not a community: both parts must be numbers from 0 to 65535`,
			`Community "c": spec.communities[1].value: "large:1:2" is not a community ("65000:100" or "large:1:2:3")`,
			`Community "c": spec.communities[2].value: "65000" is not a community ("65000:100" or "large:1:2:3")`}},
		{"bad names", Resources{Communities: []v1beta1.Community{community("c", "", "1:1", "a:b", "1:1", "a b", "1:1")}}, []string{
			`Community "c": spec.communities[0].name: required`,
			`Community "c": spec.communities[1].name: "a:b": alias names may not contain ':' or whitespace`,
			`Community "c": spec.communities[2].name: "a b": alias names may not contain ':' or whitespace`}},
		{"duplicate in one object", Resources{Communities: []v1beta1.Community{community("c", "a", "1:1", "a", "1:1")}}, []string{
			`Community "c": spec.communities[1].name: alias "a" is already defined at spec.communities[0]`}},
		{"duplicate across objects", Resources{Communities: []v1beta1.Community{community("y", "a", "1:2"), community("x", "a", "1:1")}}, []string{
			`Community "y": spec.communities[0].name: alias "a" is already defined in Community "x"`}},
	})
}

func TestBuildConfigMap(t *testing.T) {
	cm := func(data string) *LegacyData {
		return &LegacyData{Namespace: testNS, Name: "herald-config", Data: data}
	}
	runErrorCases(t, []errorCase{
		{"empty", Resources{ConfigMap: cm("")}, nil},
		{"syntax", Resources{ConfigMap: cm("peers: [")}, []string{
			`ConfigMap herald-system/herald-config: invalid YAML: yaml: line 1: did not find expected node content`}},
		{"shape", Resources{ConfigMap: cm("address-pools:\n- name: a\n  protocol: l3\n  adresses: [10.0.0.0/24]\n")}, []string{
			`ConfigMap herald-system/herald-config: address-pools[0]: unknown field "adresses"`,
			`ConfigMap herald-system/herald-config: address-pools[0].protocol: "l3" is not layer2 or bgp`}},
		{"values", Resources{ConfigMap: cm(`
peers:
- peer-address: 10.0.0.1
  peer-asn: 64500
  my-asn: 64500
  ebgp-multihop: true
  hold-time: 2s
  node-selectors:
  - match-expressions:
    - {key: k, operator: Bogus}
bgp-communities:
  bad: "1:2:3"
address-pools:
- name: a
  protocol: bgp
  addresses: [10.0.0.0/24, 10.0.0.300/24]
  bgp-advertisements:
  - aggregation-length: 16
    communities: [nope]
`)}, []string{
			`ConfigMap herald-system/herald-config: address-pools[0].addresses[1]: "10.0.0.300/24" is neither a CIDR nor a first-last range`,
			`ConfigMap herald-system/herald-config: address-pools[0].bgp-advertisements[0].communities[0]: "nope" is neither a community value nor an alias defined in a Community object`,
			`ConfigMap herald-system/herald-config: bgp-communities.bad: "1:2:3" is not a community ("65000:100" or "large:1:2:3")`,
			`ConfigMap herald-system/herald-config: peers[0].ebgp-multihop: ebgpMultiHop is for eBGP peers; myASN equals peerASN`,
			`ConfigMap herald-system/herald-config: peers[0].hold-time: 2s is neither 0 nor between 3s and 65535s`,
			`ConfigMap herald-system/herald-config: peers[0].node-selectors[0].match-expressions[0].operator: Invalid value: "Bogus": not a valid selector operator`}},
		{"aggregation", Resources{ConfigMap: cm("address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24]\n  bgp-advertisements:\n  - aggregation-length: 16\n")}, []string{
			`ConfigMap herald-system/herald-config: address-pools[0].bgp-advertisements[0].aggregation-length: aggregationLength 16 is shorter than pool "a" prefix 10.0.0.0/24`}},
		{"conflicting advertisements", Resources{ConfigMap: cm("address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24]\n  bgp-advertisements:\n  - localpref: 1\n  - localpref: 2\n")}, []string{
			`ConfigMap herald-system/herald-config: address-pools[0].bgp-advertisements[1].localpref: conflicts with ConfigMap herald-system/herald-config address-pools[0].bgp-advertisements[0] on pool "a": both announce IPv4 /32 prefixes to the same peers, from nodes both may select, but with localPref 2 here and 1 there`}},
		{"overlaps a CRD pool", Resources{
			Pools:     []v1beta1.IPAddressPool{pool("crd", "10.0.0.128/25")},
			ConfigMap: cm("address-pools:\n- name: cm\n  protocol: layer2\n  addresses: [10.0.0.0/24]\n"),
		}, []string{
			`ConfigMap herald-system/herald-config: address-pools[0].addresses[0]: "10.0.0.0/24" overlaps "10.0.0.128/25" of pool "crd"`,
			`IPAddressPool "crd": spec.addresses[0]: "10.0.0.128/25" overlaps "10.0.0.0/24" of pool "cm"`}},
		{"pool defined twice", Resources{
			Pools:     []v1beta1.IPAddressPool{pool("gold", "10.0.0.0/25")},
			ConfigMap: cm("address-pools:\n- name: gold\n  protocol: layer2\n  addresses: [10.0.0.0/24]\n"),
		}, []string{
			`IPAddressPool "gold": metadata.name: defined both as an IPAddressPool and in ConfigMap herald-system/herald-config`}},
		{"advertisement defined twice", Resources{
			L2Advs:    []v1beta1.L2Advertisement{l2("gold-l2", nil)},
			ConfigMap: cm("address-pools:\n- name: gold\n  protocol: layer2\n  addresses: [10.0.0.0/24]\n"),
		}, []string{
			`L2Advertisement "gold-l2": metadata.name: defined both as an L2Advertisement and in ConfigMap herald-system/herald-config`}},
		{"peer defined twice", Resources{
			Peers:     []v1beta1.BGPPeer{peer("peer-0-10-0-0-1", "10.0.0.2", 1, 2, nil)},
			ConfigMap: cm("peers:\n- peer-address: 10.0.0.1\n  peer-asn: 1\n  my-asn: 2\n"),
		}, []string{
			`BGPPeer "peer-0-10-0-0-1": metadata.name: defined both as a BGPPeer and in ConfigMap herald-system/herald-config`}},
		{"alias defined twice", Resources{
			Communities: []v1beta1.Community{community("zzz", "no-export", "65535:65281")},
			ConfigMap:   cm("bgp-communities:\n  no-export: 65535:65281\n"),
		}, []string{
			`Community "zzz": spec.communities[0].name: alias "no-export" is defined both here and in ConfigMap herald-system/herald-config`}},
		{"ConfigMap alias used by a CRD", Resources{
			Pools:     []v1beta1.IPAddressPool{pool("p", "10.0.0.0/24")},
			BGPAdvs:   []v1beta1.BGPAdvertisement{bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"backbone"} })},
			ConfigMap: cm("bgp-communities:\n  backbone: 64500:1\n"),
		}, nil},
		{"ConfigMap namespace is not checked", Resources{
			ConfigMap: &LegacyData{Namespace: "metallb-system", Name: "config", Data: "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10.0.0.0/24, x]\n"},
		}, []string{
			`ConfigMap metallb-system/config: address-pools[0].addresses[1]: "x" is neither a CIDR nor a first-last range`}},
	})
}

func TestBuildConfigMapModel(t *testing.T) {
	res := Resources{
		Pools: []v1beta1.IPAddressPool{pool("crd", "10.1.0.0/24")},
		ConfigMap: &LegacyData{Data: `
address-pools:
- name: cm
  protocol: bgp
  auto-assign: false
  addresses: [10.0.0.0/24]
  bgp-advertisements:
  - communities: [backbone, "65535:65281"]
- name: l2
  protocol: layer2
  addresses: [10.2.0.0/24]
bgp-communities:
  backbone: 64500:1
`},
	}
	cfg, err := Build(res, Options{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if got := cfg.PoolOrder; !cmp.Equal(got, []string{"cm", "crd", "l2"}) {
		t.Errorf("PoolOrder = %v", got)
	}
	cm := cfg.Pools["cm"]
	if cm.AutoAssign || cm.Source != 1 || cfg.Pools["crd"].Source != 0 {
		t.Errorf("pool cm = %+v, crd source %v", cm, cfg.Pools["crd"].Source)
	}
	if len(cfg.BGPAdvs) != 1 || cfg.BGPAdvs[0].Name != "cm-bgp-0" || len(cfg.BGPAdvs[0].Communities) != 2 {
		t.Errorf("BGPAdvs = %+v", cfg.BGPAdvs)
	}
	if len(cfg.L2Advs) != 1 || cfg.L2Advs[0].Name != "l2-l2" || !cmp.Equal(cfg.L2Advs[0].Pools, []string{"l2"}) {
		t.Errorf("L2Advs = %+v", cfg.L2Advs)
	}
}

func TestBuildBFDProfileErrors(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	yes := true
	prof := func(name string, mod func(*v1beta1.BFDProfileSpec)) v1beta1.BFDProfile {
		p := v1beta1.BFDProfile{ObjectMeta: meta(name)}
		if mod != nil {
			mod(&p.Spec)
		}
		return p
	}
	withBFD := func(name string) func(*v1beta1.BGPPeerSpec) {
		return func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = name }
	}
	runErrorCases(t, []errorCase{
		{"valid, defaults", Resources{BFDProfiles: []v1beta1.BFDProfile{prof("fast", nil)},
			Peers: []v1beta1.BGPPeer{peer("p", "10.0.0.1", 1, 2, withBFD("fast"))}}, nil},
		{"out of range", Resources{BFDProfiles: []v1beta1.BFDProfile{prof("bad", func(s *v1beta1.BFDProfileSpec) {
			s.ReceiveInterval, s.TransmitInterval, s.DetectMultiplier, s.EchoInterval, s.MinimumTTL = u(9), u(60001), u(1), u(5), u(255)
		})}}, []string{
			`BFDProfile "bad": spec.detectMultiplier: 1 is not between 2 and 255`,
			`BFDProfile "bad": spec.echoInterval: 5 is not between 10 and 60000`,
			`BFDProfile "bad": spec.minimumTtl: 255 is not between 1 and 254`,
			`BFDProfile "bad": spec.receiveInterval: 9 is not between 10 and 60000`,
			`BFDProfile "bad": spec.transmitInterval: 60001 is not between 10 and 60000`}},
		{"echo mode is accepted (and not used)", Resources{BFDProfiles: []v1beta1.BFDProfile{prof("echo", func(s *v1beta1.BFDProfileSpec) { s.EchoMode = &yes })}}, nil},
		{"unknown profile", Resources{Peers: []v1beta1.BGPPeer{peer("p", "10.0.0.1", 1, 2, withBFD("nope"))}}, []string{
			`BGPPeer "p": spec.bfdProfile: BFDProfile "nope" does not exist`}},
		{"invalid profile is reported once", Resources{
			BFDProfiles: []v1beta1.BFDProfile{prof("slow", func(s *v1beta1.BFDProfileSpec) { s.ReceiveInterval = u(60001) })},
			Peers:       []v1beta1.BGPPeer{peer("p", "10.0.0.1", 1, 2, withBFD("slow"))}}, []string{
			`BFDProfile "slow": spec.receiveInterval: 60001 is not between 10 and 60000`}},
	})
}

// The timers a peer gets: holdTime defaults to 90s, or to 3 ×
// keepaliveTime when only that is set (as in MetalLB); keepaliveTime
// defaults to a third of holdTime.
func TestPeerTimers(t *testing.T) {
	tests := []struct {
		name        string
		hold, ka    *metav1.Duration
		wantHold    time.Duration
		wantKeepalv time.Duration
	}{
		{"defaults", nil, nil, 90 * time.Second, 30 * time.Second},
		{"keepalive alone", nil, dur(60 * time.Second), 180 * time.Second, 60 * time.Second},
		{"hold alone", dur(10 * time.Second), nil, 10 * time.Second, 3 * time.Second},
		{"both", dur(9 * time.Second), dur(2 * time.Second), 9 * time.Second, 2 * time.Second},
		{"no keepalives", dur(0), nil, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Build(Resources{Peers: []v1beta1.BGPPeer{peer("p", "10.0.0.1", 64500, 64501, func(s *v1beta1.BGPPeerSpec) {
				s.HoldTime, s.KeepaliveTime = tc.hold, tc.ka
			})}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Peers[0]
			if p.HoldTime != tc.wantHold || p.KeepaliveTime != tc.wantKeepalv {
				t.Errorf("holdTime %s keepaliveTime %s, want %s and %s", p.HoldTime, p.KeepaliveTime, tc.wantHold, tc.wantKeepalv)
			}
		})
	}
}

// The objects convert-configmap makes of a ConfigMap take the place of
// its entries while both exist, so the ConfigMap can be deleted after
// they are applied without a moment without configuration.
func TestBuildConvertedNextToConfigMap(t *testing.T) {
	data, err := os.ReadFile("legacy/testdata/full.configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := legacy.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	o := f.Resources(testNS)
	objs := Resources{Pools: o.Pools, L2Advs: o.L2Advs, BGPAdvs: o.BGPAdvs, Peers: o.Peers, Communities: o.Communities, BFDProfiles: o.BFDProfiles}
	for _, m := range objectMetas(&objs) {
		m.Annotations = nil // as applied from convert-configmap's output
	}
	cmOnly, err := Build(Resources{ConfigMap: &LegacyData{Namespace: testNS, Name: "herald-config", Data: string(data)}}, Options{Namespace: testNS})
	if err != nil {
		t.Fatal(err)
	}
	objs.ConfigMap = &LegacyData{Namespace: testNS, Name: "herald-config", Data: string(data)}
	both, err := Build(objs, Options{Namespace: testNS})
	if err != nil {
		t.Fatalf("the converted objects next to their ConfigMap: %v", err)
	}
	if !slices.Equal(cmOnly.PoolOrder, both.PoolOrder) || len(cmOnly.Peers) != len(both.Peers) || len(cmOnly.BGPAdvs) != len(both.BGPAdvs) || len(cmOnly.L2Advs) != len(both.L2Advs) {
		t.Errorf("configuration differs: pools %v / %v, %d / %d peers, %d / %d BGP and %d / %d L2 advertisements",
			cmOnly.PoolOrder, both.PoolOrder, len(cmOnly.Peers), len(both.Peers), len(cmOnly.BGPAdvs), len(both.BGPAdvs), len(cmOnly.L2Advs), len(both.L2Advs))
	}
	for _, p := range both.Pools {
		if p.Source == model.SourceConfigMap {
			t.Errorf("pool %s still from the ConfigMap, want the object", p.Name)
		}
	}
}

func objectMetas(r *Resources) []*metav1.ObjectMeta {
	var out []*metav1.ObjectMeta
	for i := range r.Pools {
		out = append(out, &r.Pools[i].ObjectMeta)
	}
	for i := range r.L2Advs {
		out = append(out, &r.L2Advs[i].ObjectMeta)
	}
	for i := range r.BGPAdvs {
		out = append(out, &r.BGPAdvs[i].ObjectMeta)
	}
	for i := range r.Peers {
		out = append(out, &r.Peers[i].ObjectMeta)
	}
	for i := range r.Communities {
		out = append(out, &r.Communities[i].ObjectMeta)
	}
	for i := range r.BFDProfiles {
		out = append(out, &r.BFDProfiles[i].ObjectMeta)
	}
	return out
}
