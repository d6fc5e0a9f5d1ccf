package legacy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
)

// CommunityObjectName is the name of the Community object holding the
// ConfigMap's bgp-communities.
const CommunityObjectName = "configmap-communities"

// Objects are the configuration objects a File converts to, each kind in
// document order.
type Objects struct {
	Pools       []v1beta1.IPAddressPool
	L2Advs      []v1beta1.L2Advertisement
	BGPAdvs     []v1beta1.BGPAdvertisement
	Peers       []v1beta1.BGPPeer
	Communities []v1beta1.Community
	BFDProfiles []v1beta1.BFDProfile
}

// Resources converts f into Herald's configuration objects in namespace
// (see the package comment for names). Each object carries the
// v1beta1.AnnotationSource and v1beta1.AnnotationConfigMapPath
// annotations. Values are copied as written; config.Build validates them.
func (f *File) Resources(namespace string) Objects {
	var out Objects
	meta := func(kind, name, path string) (metav1.TypeMeta, metav1.ObjectMeta) {
		return metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: kind},
			metav1.ObjectMeta{
				Name:      name,
				Namespace: namespace,
				Annotations: map[string]string{
					v1beta1.AnnotationSource:        v1beta1.SourceConfigMap,
					v1beta1.AnnotationConfigMapPath: path,
				},
			}
	}
	for i, p := range f.Pools {
		path := fmt.Sprintf("address-pools[%d]", i)
		pool := v1beta1.IPAddressPool{Spec: v1beta1.IPAddressPoolSpec{
			Addresses:     slices.Clone(p.Addresses),
			AutoAssign:    clonePtr(p.AutoAssign),
			AvoidBuggyIPs: p.AvoidBuggyIPs,
		}}
		pool.TypeMeta, pool.ObjectMeta = meta("IPAddressPool", p.Name, path)
		out.Pools = append(out.Pools, pool)

		switch p.Protocol {
		case ProtocolLayer2:
			adv := v1beta1.L2Advertisement{Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{p.Name}}}
			adv.TypeMeta, adv.ObjectMeta = meta("L2Advertisement", p.Name+"-l2", path)
			out.L2Advs = append(out.L2Advs, adv)
		case ProtocolBGP:
			if len(p.BGPAdvertisements) == 0 {
				adv := v1beta1.BGPAdvertisement{Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{p.Name}}}
				adv.TypeMeta, adv.ObjectMeta = meta("BGPAdvertisement", p.Name+"-bgp", path)
				out.BGPAdvs = append(out.BGPAdvs, adv)
			}
			for j, a := range p.BGPAdvertisements {
				adv := v1beta1.BGPAdvertisement{Spec: v1beta1.BGPAdvertisementSpec{
					IPAddressPools:      []string{p.Name},
					AggregationLength:   clonePtr(a.AggregationLength),
					AggregationLengthV6: clonePtr(a.AggregationLengthV6),
					Communities:         slices.Clone(a.Communities),
				}}
				if a.LocalPref != nil {
					adv.Spec.LocalPref = *a.LocalPref
				}
				adv.TypeMeta, adv.ObjectMeta = meta("BGPAdvertisement",
					fmt.Sprintf("%s-bgp-%d", p.Name, j), fmt.Sprintf("%s.bgp-advertisements[%d]", path, j))
				out.BGPAdvs = append(out.BGPAdvs, adv)
			}
		}
	}
	for i, p := range f.Peers {
		peer := v1beta1.BGPPeer{Spec: v1beta1.BGPPeerSpec{
			MyASN:         p.MyASN,
			PeerASN:       p.PeerASN,
			PeerAddress:   p.PeerAddress,
			PeerPort:      p.PeerPort,
			SourceAddress: p.SourceAddress,
			RouterID:      p.RouterID,
			HoldTime:      clonePtr(p.HoldTime),
			KeepaliveTime: clonePtr(p.KeepaliveTime),
			Password:      p.Password,
			EBGPMultiHop:  p.EBGPMultiHop,
			BFDProfile:    p.BFDProfile,
		}}
		for _, s := range p.NodeSelectors {
			sel := metav1.LabelSelector{MatchLabels: maps.Clone(s.MatchLabels)}
			for _, e := range s.MatchExpressions {
				sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
					Key:      e.Key,
					Operator: metav1.LabelSelectorOperator(e.Operator),
					Values:   slices.Clone(e.Values),
				})
			}
			peer.Spec.NodeSelectors = append(peer.Spec.NodeSelectors, sel)
		}
		peer.TypeMeta, peer.ObjectMeta = meta("BGPPeer", PeerName(i, p.PeerAddress), fmt.Sprintf("peers[%d]", i))
		out.Peers = append(out.Peers, peer)
	}
	for i, b := range f.BFDProfiles {
		prof := v1beta1.BFDProfile{Spec: v1beta1.BFDProfileSpec{
			ReceiveInterval:  clonePtr(b.ReceiveInterval),
			TransmitInterval: clonePtr(b.TransmitInterval),
			DetectMultiplier: clonePtr(b.DetectMultiplier),
			EchoInterval:     clonePtr(b.EchoInterval),
			MinimumTTL:       clonePtr(b.MinimumTTL),
		}}
		if b.EchoMode {
			prof.Spec.EchoMode = &b.EchoMode
		}
		if b.PassiveMode {
			prof.Spec.PassiveMode = &b.PassiveMode
		}
		prof.TypeMeta, prof.ObjectMeta = meta("BFDProfile", b.Name, fmt.Sprintf("bfd-profiles[%d]", i))
		out.BFDProfiles = append(out.BFDProfiles, prof)
	}
	if len(f.BGPCommunities) > 0 {
		var c v1beta1.Community
		for _, name := range slices.Sorted(maps.Keys(f.BGPCommunities)) {
			c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: name, Value: f.BGPCommunities[name]})
		}
		c.TypeMeta, c.ObjectMeta = meta("Community", CommunityObjectName, "bgp-communities")
		out.Communities = append(out.Communities, c)
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// PeerName is the name of the BGPPeer made from the i-th peer with
// address addr: "peer-<i>-<addr>", addr lowercased with everything but
// a-z and 0-9 replaced by '-', trailing dashes dropped.
func PeerName(i int, addr string) string {
	var b strings.Builder
	b.WriteString("peer-")
	b.WriteString(strconv.Itoa(i))
	b.WriteByte('-')
	for _, r := range strings.ToLower(addr) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// FromConfigMap reports whether obj was made by Resources.
func FromConfigMap(obj metav1.Object) bool {
	return obj.GetAnnotations()[v1beta1.AnnotationSource] == v1beta1.SourceConfigMap
}

// legacyKeys maps the CRD field names of converted objects to the
// ConfigMap's keys.
var legacyKeys = map[string]string{
	"addresses":           "addresses",
	"autoAssign":          "auto-assign",
	"avoidBuggyIPs":       "avoid-buggy-ips",
	"aggregationLength":   "aggregation-length",
	"aggregationLengthV6": "aggregation-length-v6",
	"localPref":           "localpref",
	"communities":         "communities",
	"myASN":               "my-asn",
	"peerASN":             "peer-asn",
	"peerAddress":         "peer-address",
	"peerPort":            "peer-port",
	"sourceAddress":       "source-address",
	"routerID":            "router-id",
	"holdTime":            "hold-time",
	"keepaliveTime":       "keepalive-time",
	"password":            "password",
	"ebgpMultiHop":        "ebgp-multihop",
	"bfdProfile":          "bfd-profile",
	"receiveInterval":     "receive-interval",
	"transmitInterval":    "transmit-interval",
	"detectMultiplier":    "detect-multiplier",
	"echoInterval":        "echo-interval",
	"echoMode":            "echo-mode",
	"passiveMode":         "passive-mode",
	"minimumTtl":          "minimum-ttl",
	"nodeSelectors":       "node-selectors",
	"matchLabels":         "match-labels",
	"matchExpressions":    "match-expressions",
	"key":                 "key",
	"operator":            "operator",
	"values":              "values",
}

// ConfigMapPath translates the path of a field of an object made by
// Resources ("spec.addresses[1]") into the path in the ConfigMap data it
// came from ("address-pools[0].addresses[1]"). ok is false when obj was
// not made by Resources. Fields with no ConfigMap counterpart map to the
// path of the entry the object came from.
func ConfigMapPath(obj metav1.Object, field string) (path string, ok bool) {
	if !FromConfigMap(obj) {
		return "", false
	}
	base := obj.GetAnnotations()[v1beta1.AnnotationConfigMapPath]
	if c, isCommunity := obj.(*v1beta1.Community); isCommunity {
		// spec.communities[i].* -> bgp-communities.<name of alias i>
		rest, found := strings.CutPrefix(field, "spec.communities[")
		if idx, _, closed := strings.Cut(rest, "]"); found && closed {
			if i, err := strconv.Atoi(idx); err == nil && i >= 0 && i < len(c.Spec.Communities) {
				return join(base, c.Spec.Communities[i].Name), true
			}
		}
		return base, true
	}
	switch obj.(type) {
	case *v1beta1.L2Advertisement:
		return base, true // made from the pool's protocol alone
	case *v1beta1.BGPAdvertisement:
		if !strings.Contains(base, ".bgp-advertisements[") {
			return base, true // the default advertisement of a pool listing none
		}
	}
	if field == "metadata.name" {
		if _, isPool := obj.(*v1beta1.IPAddressPool); isPool {
			return base + ".name", true
		}
		return base, true
	}
	rest, isSpec := strings.CutPrefix(field, "spec.")
	if !isSpec {
		return base, true
	}
	segs := strings.Split(rest, ".")
	for i, seg := range segs {
		name, index, _ := strings.Cut(seg, "[")
		key, known := legacyKeys[name]
		if !known {
			if i == 0 { // no ConfigMap counterpart
				return base, true
			}
			break // below a known key (a label name): keep as is
		}
		if index != "" {
			key += "[" + index
		}
		segs[i] = key
	}
	return join(base, strings.Join(segs, ".")), true
}
