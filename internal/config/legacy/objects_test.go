package legacy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
)

func objectMeta(name, path string) (metav1.TypeMeta, metav1.ObjectMeta) {
	return metav1.TypeMeta{}, metav1.ObjectMeta{
		Name: name, Namespace: "ns",
		Annotations: map[string]string{v1beta1.AnnotationSource: v1beta1.SourceConfigMap, v1beta1.AnnotationConfigMapPath: path},
	}
}

func TestResources(t *testing.T) {
	f := &File{
		Peers: []Peer{{
			PeerAddress: "fd00::1", PeerASN: 2, MyASN: 1, PeerPort: 1179,
			HoldTime: &metav1.Duration{Duration: time.Minute}, Password: "pw", EBGPMultiHop: true,
			NodeSelectors: []NodeSelector{{MatchLabels: map[string]string{"a": "b"},
				MatchExpressions: []SelectorRequirement{{Key: "k", Operator: "NotIn", Values: []string{"v"}}}}},
			BFDProfile: "fast",
		}},
		BFDProfiles:    []BFDProfile{{Name: "fast", ReceiveInterval: ptr[uint32](50), DetectMultiplier: ptr[uint32](4), EchoMode: true, PassiveMode: true}},
		BGPCommunities: map[string]string{"z": "1:1", "a": "2:2"},
		Pools: []Pool{
			{Name: "l2", Protocol: ProtocolLayer2, Addresses: []string{"10.0.0.0/24"}, AvoidBuggyIPs: true},
			{Name: "b", Protocol: ProtocolBGP, Addresses: []string{"10.1.0.0/24"}, AutoAssign: ptr(false)},
			{Name: "c", Protocol: ProtocolBGP, Addresses: []string{"10.2.0.0/24"}, BGPAdvertisements: []BGPAdvertisement{
				{AggregationLength: ptr[int32](24), LocalPref: ptr[uint32](5), Communities: []string{"a"}},
				{AggregationLengthV6: ptr[int32](64)},
			}},
		},
	}
	got := f.Resources("ns")

	want := Objects{}
	pool := func(name, path string, spec v1beta1.IPAddressPoolSpec) v1beta1.IPAddressPool {
		p := v1beta1.IPAddressPool{Spec: spec}
		p.TypeMeta, p.ObjectMeta = objectMeta(name, path)
		p.TypeMeta = metav1.TypeMeta{APIVersion: "herald.dev/v1beta1", Kind: "IPAddressPool"}
		return p
	}
	want.Pools = []v1beta1.IPAddressPool{
		pool("l2", "address-pools[0]", v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/24"}, AvoidBuggyIPs: true}),
		pool("b", "address-pools[1]", v1beta1.IPAddressPoolSpec{Addresses: []string{"10.1.0.0/24"}, AutoAssign: ptr(false)}),
		pool("c", "address-pools[2]", v1beta1.IPAddressPoolSpec{Addresses: []string{"10.2.0.0/24"}}),
	}
	l2 := v1beta1.L2Advertisement{Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}
	_, l2.ObjectMeta = objectMeta("l2-l2", "address-pools[0]")
	l2.TypeMeta = metav1.TypeMeta{APIVersion: "herald.dev/v1beta1", Kind: "L2Advertisement"}
	want.L2Advs = []v1beta1.L2Advertisement{l2}
	adv := func(name, path string, spec v1beta1.BGPAdvertisementSpec) v1beta1.BGPAdvertisement {
		a := v1beta1.BGPAdvertisement{Spec: spec}
		_, a.ObjectMeta = objectMeta(name, path)
		a.TypeMeta = metav1.TypeMeta{APIVersion: "herald.dev/v1beta1", Kind: "BGPAdvertisement"}
		return a
	}
	want.BGPAdvs = []v1beta1.BGPAdvertisement{
		adv("b-bgp", "address-pools[1]", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"b"}}),
		adv("c-bgp-0", "address-pools[2].bgp-advertisements[0]", v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{"c"}, AggregationLength: ptr[int32](24), LocalPref: 5, Communities: []string{"a"}}),
		adv("c-bgp-1", "address-pools[2].bgp-advertisements[1]", v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{"c"}, AggregationLengthV6: ptr[int32](64)}),
	}
	peer := v1beta1.BGPPeer{Spec: v1beta1.BGPPeerSpec{
		MyASN: 1, PeerASN: 2, PeerAddress: "fd00::1", PeerPort: 1179,
		HoldTime: &metav1.Duration{Duration: time.Minute}, Password: "pw", EBGPMultiHop: true,
		NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"a": "b"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"v"}}}}},
		BFDProfile: "fast",
	}}
	_, peer.ObjectMeta = objectMeta("peer-0-fd00--1", "peers[0]")
	peer.TypeMeta = metav1.TypeMeta{APIVersion: "herald.dev/v1beta1", Kind: "BGPPeer"}
	want.Peers = []v1beta1.BGPPeer{peer}
	comm := v1beta1.Community{Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "a", Value: "2:2"}, {Name: "z", Value: "1:1"}}}}
	_, comm.ObjectMeta = objectMeta("configmap-communities", "bgp-communities")
	comm.TypeMeta = metav1.TypeMeta{APIVersion: "herald.dev/v1beta1", Kind: "Community"}
	want.Communities = []v1beta1.Community{comm}
	bfd := v1beta1.BFDProfile{Spec: v1beta1.BFDProfileSpec{ReceiveInterval: ptr[uint32](50), DetectMultiplier: ptr[uint32](4), EchoMode: ptr(true), PassiveMode: ptr(true)}}
	_, bfd.ObjectMeta = objectMeta("fast", "bfd-profiles[0]")
	bfd.TypeMeta = metav1.TypeMeta{APIVersion: "herald.dev/v1beta1", Kind: "BFDProfile"}
	want.BFDProfiles = []v1beta1.BFDProfile{bfd}

	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resources (-want +got):\n%s", diff)
	}
	// The objects own their data.
	got.Pools[0].Spec.Addresses[0] = "changed"
	got.Peers[0].Spec.NodeSelectors[0].MatchLabels["a"] = "changed"
	if f.Pools[0].Addresses[0] != "10.0.0.0/24" || f.Peers[0].NodeSelectors[0].MatchLabels["a"] != "b" {
		t.Error("Resources shares slices or maps with the File")
	}
}

func TestPeerName(t *testing.T) {
	tests := []struct {
		i    int
		addr string
		want string
	}{
		{0, "10.0.0.1", "peer-0-10-0-0-1"},
		{3, "FD00:10::1", "peer-3-fd00-10--1"},
		{1, "fd00::", "peer-1-fd00"},
		{2, "", "peer-2"},
		{4, "router.example.com", "peer-4-router-example-com"},
	}
	for _, tt := range tests {
		if got := PeerName(tt.i, tt.addr); got != tt.want {
			t.Errorf("PeerName(%d, %q) = %q, want %q", tt.i, tt.addr, got, tt.want)
		}
	}
}

func TestConfigMapPath(t *testing.T) {
	f := &File{
		Peers:          []Peer{{PeerAddress: "10.0.0.1"}},
		BGPCommunities: map[string]string{"b": "1:1", "a": "x"},
		Pools: []Pool{
			{Name: "l2", Protocol: ProtocolLayer2},
			{Name: "bgp", Protocol: ProtocolBGP, BGPAdvertisements: []BGPAdvertisement{{}, {}}},
			{Name: "def", Protocol: ProtocolBGP},
		},
	}
	objs := f.Resources("ns")
	tests := []struct {
		obj   metav1.Object
		field string
		want  string
	}{
		{&objs.Pools[0], "spec.addresses[3]", "address-pools[0].addresses[3]"},
		{&objs.Pools[0], "spec.autoAssign", "address-pools[0].auto-assign"},
		{&objs.Pools[0], "metadata.name", "address-pools[0].name"},
		{&objs.Pools[0], "", "address-pools[0]"},
		{&objs.L2Advs[0], "metadata.name", "address-pools[0]"},
		{&objs.BGPAdvs[1], "spec.aggregationLengthV6", "address-pools[1].bgp-advertisements[1].aggregation-length-v6"},
		{&objs.BGPAdvs[1], "spec.communities[2]", "address-pools[1].bgp-advertisements[1].communities[2]"},
		{&objs.BGPAdvs[1], "spec.localPref", "address-pools[1].bgp-advertisements[1].localpref"},
		{&objs.BGPAdvs[1], "metadata.name", "address-pools[1].bgp-advertisements[1]"},
		{&objs.BGPAdvs[2], "spec.localPref", "address-pools[2]"},
		{&objs.Peers[0], "spec.holdTime", "peers[0].hold-time"},
		{&objs.Peers[0], "spec.ebgpMultiHop", "peers[0].ebgp-multihop"},
		{&objs.Peers[0], "spec.nodeSelectors[1].matchExpressions[0].values", "peers[0].node-selectors[1].match-expressions[0].values"},
		{&objs.Peers[0], "spec.nodeSelectors[0].matchLabels.rack", "peers[0].node-selectors[0].match-labels.rack"},
		{&objs.Peers[0], "spec.connectTime", "peers[0]"},
		{&objs.Communities[0], "spec.communities[0].value", "bgp-communities.a"},
		{&objs.Communities[0], "spec.communities[1].name", "bgp-communities.b"},
		{&objs.Communities[0], "spec.communities[7].name", "bgp-communities"},
	}
	for _, tt := range tests {
		got, ok := ConfigMapPath(tt.obj, tt.field)
		if !ok || got != tt.want {
			t.Errorf("ConfigMapPath(%s, %q) = %q, %v; want %q", tt.obj.GetName(), tt.field, got, ok, tt.want)
		}
	}
	crd := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if _, ok := ConfigMapPath(crd, "spec.addresses[0]"); ok || FromConfigMap(crd) {
		t.Error("ConfigMapPath accepted an object not made by Resources")
	}
}
