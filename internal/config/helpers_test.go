package config

import (
	"net/netip"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

const testNS = "herald-system"

// cmpModel compares models: selectors by their canonical string, netip
// values by value, nil and empty alike.
var cmpModel = cmp.Options{
	cmp.Comparer(func(a, b model.Selector) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

// strSel is an expected selector, written as labels.Selector prints it.
type strSel string

func (s strSel) Matches(map[string]string) bool { panic("strSel only compares") }
func (s strSel) String() string                 { return string(s) }

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: testNS}
}

func pool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: meta(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func poolWith(p v1beta1.IPAddressPool, mod func(*v1beta1.IPAddressPool)) v1beta1.IPAddressPool {
	mod(&p)
	return p
}

func l2(name string, mod func(*v1beta1.L2AdvertisementSpec)) v1beta1.L2Advertisement {
	a := v1beta1.L2Advertisement{ObjectMeta: meta(name)}
	if mod != nil {
		mod(&a.Spec)
	}
	return a
}

func bgpAdv(name string, mod func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
	a := v1beta1.BGPAdvertisement{ObjectMeta: meta(name)}
	if mod != nil {
		mod(&a.Spec)
	}
	return a
}

func peer(name, addr string, myASN, peerASN uint32, mod func(*v1beta1.BGPPeerSpec)) v1beta1.BGPPeer {
	p := v1beta1.BGPPeer{ObjectMeta: meta(name), Spec: v1beta1.BGPPeerSpec{MyASN: myASN, PeerASN: peerASN, PeerAddress: addr}}
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

// community makes a Community object from name, value pairs.
func community(name string, kv ...string) v1beta1.Community {
	c := v1beta1.Community{ObjectMeta: meta(name)}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: kv[i], Value: kv[i+1]})
	}
	return c
}

func labelSel(kv ...string) metav1.LabelSelector {
	s := metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func rng(first, last string) model.Range { return model.Range{First: addr(first), Last: addr(last)} }
