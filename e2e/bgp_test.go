//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/e2e/lab/endpoints"
)

const poolBGP = "e2e-bgp"

// TestBGP: every node advertises the Service's address to the router; the
// router holds one path per node, installs an ECMP route over all of them,
// the routed client reaches the backends through it, and deleting the
// Service withdraws the route.
func TestBGP(t *testing.T) {
	requireLab(t)
	for _, fam := range families {
		t.Run(string(fam), func(t *testing.T) {
			t.Skip("BGP speaker not implemented yet (issue 5)")
			bgpScenario(t, fam)
		})
	}
}

// setupBGP creates the peers (the router, per family), the BGP pool and
// its BGPAdvertisement, removed when the test ends.
func setupBGP(t *testing.T) {
	t.Helper()
	r := drv.Router()
	objs := []client.Object{
		&v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "e2e-router-v4", Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPPeerSpec{MyASN: r.NodeASN, PeerASN: r.ASN, PeerAddress: r.IPv4.String()}},
		&v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "e2e-router-v6", Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPPeerSpec{MyASN: r.NodeASN, PeerASN: r.ASN, PeerAddress: r.IPv6.String()}},
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: poolBGP, Namespace: v1beta1.Namespace},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: plan.BGP.Addresses(), AutoAssign: ptr.To(false)}},
		&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: poolBGP, Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{poolBGP}}},
	}
	ctx := ctxT(t)
	for _, o := range objs {
		_ = deleteAndWait(ctx, o.DeepCopyObject().(client.Object))
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
		t.Cleanup(func() { _ = deleteAndWait(context.Background(), o) })
	}
}

func hostPrefix(ip netip.Addr) netip.Prefix {
	return netip.PrefixFrom(ip, ip.BitLen())
}

// nodeAddrs returns the sorted addresses of family f of nodes.
func nodeAddrs(t *testing.T, nodes []string, f lab.Family) []string {
	t.Helper()
	var out []string
	for _, n := range nodes {
		a, err := drv.NodeAddress(n, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out
}

// waitNextHops waits until FRR's BGP table and the router's kernel route
// for ip have exactly want as next hops (none: withdrawn).
func waitNextHops(t *testing.T, ip netip.Addr, want []string) {
	t.Helper()
	p := hostPrefix(ip)
	eventually(t, 20*time.Second, fmt.Sprintf("the router's next hops for %s are %v", p, want), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		bgp, err := lab.BGPNextHops(ctx, drv, p)
		if err != nil {
			return false, err.Error()
		}
		kern, err := lab.KernelNextHops(ctx, drv, p)
		if err != nil {
			return false, err.Error()
		}
		ok := fmt.Sprint(bgp) == fmt.Sprint(want) && fmt.Sprint(kern) == fmt.Sprint(want)
		return ok, fmt.Sprintf("BGP table %v, kernel %v", bgp, kern)
	})
}

func bgpScenario(t *testing.T, fam lab.Family) {
	setupBGP(t)
	name := "bgp-" + string(fam)
	newService(t, name, family(fam), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
	ip := waitIPs(t, name, 1)[0]
	if !plan.BGP.Contains(ip) {
		t.Fatalf("%s is not from pool %s", ip, poolBGP)
	}
	nodes := drv.NodeNames()
	waitNextHops(t, ip, nodeAddrs(t, nodes, fam))

	// Connections from the routed client spread over the nodes.
	seen := map[string]bool{}
	for i := 0; i < 30 && len(seen) < 2; i++ {
		seen[waitCurl(t, lab.HostClient, ip, 80, "", 10*time.Second)] = true
	}
	if len(nodes) > 1 && len(seen) < 2 {
		t.Errorf("30 connections through the router all reached %v: no ECMP", seen)
	}

	if err := deleteAndWait(ctxT(t), getService(t, name)); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, ip, nil)
}

// bgpLocalScenario: with externalTrafficPolicy: Local only nodes with an
// endpoint are next hops.
func bgpLocalScenario(t *testing.T) {
	setupBGP(t)
	nodes := drv.NodeNames()
	with := nodes[:1]
	if len(nodes) > 2 {
		with = nodes[:2]
	}
	name := "bgp-local"
	newService(t, name, localPolicy, annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP),
		annotate(endpoints.AnnotationEndpointNodes, joinComma(with)))
	ip := waitIPs(t, name, 1)[0]
	waitNextHops(t, ip, nodeAddrs(t, with, lab.IPv4))
	body := waitCurl(t, lab.HostClient, ip, 80, "", 10*time.Second)
	if !containsString(with, body) {
		t.Fatalf("the routed client reached %s, which has no endpoint (endpoints on %v)", body, with)
	}
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
