package webhook

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
)

const ns = v1beta1.Namespace

func om(name string, labels ...string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name}
	for i := 0; i+1 < len(labels); i += 2 {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[labels[i]] = labels[i+1]
	}
	return m
}

func pool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: om(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func TestReview(t *testing.T) {
	agg16 := int32(16)
	aggAdv := v1beta1.BGPAdvertisement{ObjectMeta: om("agg"), Spec: v1beta1.BGPAdvertisementSpec{
		AggregationLength:      &agg16,
		IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg": "yes"}}},
	}}
	labelled := pool("a", "10.0.0.0/24")
	labelled.Labels = map[string]string{"agg": "yes"}
	otherNS := pool("x", "10.9.0.0/24")
	otherNS.Namespace = "default"
	prefAdv := v1beta1.BGPAdvertisement{ObjectMeta: om("pref"), Spec: v1beta1.BGPAdvertisementSpec{LocalPref: 100, Peers: []string{"r1"}}}
	ebgp := &v1beta1.BGPPeer{ObjectMeta: om("r1"), Spec: v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "10.1.0.1"}}
	comm := v1beta1.Community{ObjectMeta: om("c"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "65000:1"}}}}
	useComm := v1beta1.BGPAdvertisement{ObjectMeta: om("uses"), Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"gold"}}}

	samePeer := func(name string) *v1beta1.BGPPeer {
		return &v1beta1.BGPPeer{ObjectMeta: om(name), Spec: v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "10.1.0.9"}}
	}
	withBFD := &v1beta1.BGPPeer{ObjectMeta: om("r2"), Spec: v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "10.1.0.2", BFDProfile: "fast"}}

	base := config.Resources{Pools: []v1beta1.IPAddressPool{*pool("a", "10.0.0.0/24")}}
	broken := config.Resources{Pools: []v1beta1.IPAddressPool{*pool("a", "10.0.0.0/24"), *pool("b", "10.0.0.128/25")}}

	tests := []struct {
		name       string
		res        config.Resources
		ch         Change
		introduced []string
		existing   int
	}{
		{"valid new pool", base, Change{Create, "IPAddressPool", pool("b", "10.0.1.0/24")}, nil, 0},
		{"malformed CIDR", base, Change{Create, "IPAddressPool", pool("b", "10.0.1.0/33")}, []string{
			`IPAddressPool "b": spec.addresses[0]: "10.0.1.0/33" is neither a CIDR nor a first-last range`}, 0},
		{"overlap names both pools", base, Change{Create, "IPAddressPool", pool("b", "10.0.0.5-10.0.0.9")}, []string{
			`IPAddressPool "a": spec.addresses[0]: "10.0.0.0/24" overlaps "10.0.0.5-10.0.0.9" of pool "b"`,
			`IPAddressPool "b": spec.addresses[0]: "10.0.0.5-10.0.0.9" overlaps "10.0.0.0/24" of pool "a"`}, 0},
		{"outside herald-system", base, Change{Create, "IPAddressPool", otherNS}, []string{
			`IPAddressPool "x": metadata.namespace: "default" is not herald-system; objects must live in herald-system`}, 0},
		{"update into an error", base, Change{Update, "IPAddressPool", pool("a", "10.0.0.0-10.0.0.x")}, []string{
			`IPAddressPool "a": spec.addresses[0]: "10.0.0.0-10.0.0.x" is neither a CIDR nor a first-last range`}, 0},
		// Pool a's error is there before, with other words: not introduced.
		{"an invalid object stays invalid", broken, Change{Update, "IPAddressPool", pool("b", "10.0.0.128/26")}, []string{
			`IPAddressPool "b": spec.addresses[0]: "10.0.0.128/26" overlaps "10.0.0.0/24" of pool "a"`}, 1},
		{"fixing one object is allowed", broken, Change{Update, "IPAddressPool", pool("b", "10.0.1.0/24")}, nil, 0},
		{"unrelated change to a broken configuration", broken, Change{Create, "IPAddressPool", pool("c", "10.0.2.0/24")}, nil, 2},
		{"a new peer makes an advertisement invalid", config.Resources{BGPAdvs: []v1beta1.BGPAdvertisement{prefAdv}}, Change{Create, "BGPPeer", ebgp}, []string{
			`BGPAdvertisement "pref": spec.localPref: localPref is only for iBGP peers, but spec.peers[0] "r1" is eBGP (myASN 64500, peerASN 64501)`}, 0},
		{"relabelling a pool under an aggregating advertisement", config.Resources{Pools: base.Pools, BGPAdvs: []v1beta1.BGPAdvertisement{aggAdv}}, Change{Update, "IPAddressPool", labelled}, []string{
			`BGPAdvertisement "agg": spec.aggregationLength: aggregationLength 16 is shorter than pool "a" prefix 10.0.0.0/24`}, 0},
		{"deleting a pool", base, Change{Delete, "IPAddressPool", pool("a")}, nil, 0},
		{"deleting an invalid pool", broken, Change{Delete, "IPAddressPool", pool("b")}, nil, 0},
		{"deleting one of three same peers", config.Resources{Peers: []v1beta1.BGPPeer{*samePeer("a"), *samePeer("b"), *samePeer("c")}},
			Change{Delete, "BGPPeer", samePeer("a")}, nil, 1},
		{"an advertisement before its Community", config.Resources{}, Change{Create, "BGPAdvertisement", &useComm}, nil, 1},
		{"a peer before its BFDProfile", config.Resources{}, Change{Create, "BGPPeer", withBFD}, nil, 1},
		{"deleting a community in use", config.Resources{Communities: []v1beta1.Community{comm}, BGPAdvs: []v1beta1.BGPAdvertisement{useComm}}, Change{Delete, "Community", &comm}, []string{
			`BGPAdvertisement "uses": spec.communities[0]: "gold" is neither a community value nor an alias defined in a Community object`}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Review(tt.res, config.Options{}, tt.ch)
			if err != nil {
				t.Fatalf("Review: %v", err)
			}
			var got []string
			for _, e := range v.Introduced {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.introduced, got); diff != "" {
				t.Errorf("introduced (-want +got):\n%s", diff)
			}
			if len(v.Existing) != tt.existing {
				t.Errorf("existing errors: %v, want %d", v.Existing, tt.existing)
			}
			if v.Allowed() != (len(tt.introduced) == 0) {
				t.Errorf("Allowed = %v", v.Allowed())
			}
		})
	}
}

func TestReviewRejectsOtherKinds(t *testing.T) {
	if _, err := Review(config.Resources{}, config.Options{}, Change{Create, "ServiceL2Status", &v1beta1.ServiceL2Status{}}); err == nil {
		t.Error("Review accepted a status kind")
	}
}

func TestVerdictText(t *testing.T) {
	e := func(name string) config.ObjectError {
		return config.ObjectError{Kind: "IPAddressPool", Namespace: ns, Name: name, Field: "spec.addresses[0]", Message: "bad"}
	}
	v := Verdict{Introduced: []config.ObjectError{e("a"), e("b")}}
	if got, want := v.Message(), `IPAddressPool "a": spec.addresses[0]: bad; IPAddressPool "b": spec.addresses[0]: bad`; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
	var many Verdict
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		many.Existing = append(many.Existing, e(n))
	}
	w := many.Warnings()
	if len(w) != maxWarnings+1 || w[maxWarnings] != "and 2 more configuration errors; see the Valid condition of each object" {
		t.Errorf("Warnings = %q", w)
	}
}

// An update that touches neither spec nor labels is let through unread,
// for every kind (a finalizer removed from an invalid object).
func TestSpecOf(t *testing.T) {
	for _, obj := range []runtime.Object{&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BGPPeer{}, &v1beta1.Community{}, &v1beta1.BFDProfile{}} {
		if got := specOf(obj); got == any(obj) {
			t.Errorf("specOf(%T) is the whole object", obj)
		}
	}
}
