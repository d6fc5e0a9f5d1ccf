//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/e2e/lab/endpoints"
)

const poolBGP = "e2e-bgp"

// The suite's BGP peers (the router, once per family) and the
// communities its advertisement attaches.
const (
	peerBGPv4 = "e2e-router-v4"
	peerBGPv6 = "e2e-router-v6"
	commBGP   = "65000:300"
	largeBGP  = "64513:1:2"
)

// TestBGP: every node advertises the Service's address to the router; the
// router holds one path per node (with the advertisement's communities),
// installs an ECMP route over all of them, the routed client reaches the
// backends through it, each node's ServiceBGPStatus says what it
// advertises, and deleting the Service withdraws the route.
func TestBGP(t *testing.T) {
	requireLab(t)
	requireSpeaker(t)
	setupBGP(t)
	for _, fam := range families {
		t.Run(string(fam), func(t *testing.T) {
			bgpScenario(t, fam)
		})
	}
}

// TestBGPGracefulShutdown: a speaker stopped with SIGTERM closes its
// sessions with a NOTIFICATION, so the router drops its next hop at once
// (not after the hold timer); started again, it is back.
func TestBGPGracefulShutdown(t *testing.T) {
	nodes := bgpNodes(t)
	newService(t, "bgp-term", family(lab.IPv4), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
	ip := waitIPs(t, "bgp-term", 1)[0]
	waitNextHops(t, ip, nodeAddrs(t, nodes, lab.IPv4))

	victim := nodes[0]
	restarted := false
	t.Cleanup(func() {
		if restarted {
			return
		}
		if err := drv.RestartSpeaker(context.Background(), victim); err != nil {
			t.Errorf("restart the speaker of %s: %v", victim, err)
		}
	})
	t0 := time.Now()
	if err := drv.SignalSpeaker(ctxT(t), victim, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Well under the hold time (3 s): only a NOTIFICATION (or the closed
	// connection) makes the router drop the path this fast.
	waitKernelNextHops(t, 2*time.Second, "the router's kernel route loses "+victim, ip, nodeAddrs(t, nodes[1:], lab.IPv4))
	figure(t, "bgp-sigterm-nexthop-gone-ipv4", time.Since(t0))
	addr, err := drv.NodeAddress(victim, lab.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	if reset := lastReset(t, addr); !strings.Contains(reset, "Notification received") {
		t.Errorf("the router's last reset of %s: %q, want a NOTIFICATION received", victim, reset)
	}

	t1 := time.Now()
	if err := drv.RestartSpeaker(ctxT(t), victim); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// /readyz (what a DaemonSet rollout waits for before the next node)
	// says ready only once the sessions are up: the router has them
	// established by then.
	first := ""
	eventually(t, 10*time.Second, victim+"'s speaker says it is ready", func() (bool, string) {
		code, body := speakerReadyz(t, victim)
		if first == "" {
			first = fmt.Sprintf("%d %s", code, body)
		}
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	for _, f := range []lab.Family{lab.IPv4, lab.IPv6} {
		addr, err := drv.NodeAddress(victim, f)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 500*time.Millisecond, fmt.Sprintf("the router's %s session with %s is established once its speaker is ready", f, victim), func() (bool, string) {
			st := routerNeighbor(t, addr).State
			return st == "Established", "state " + st
		})
	}
	t.Logf("/readyz of %s after the restart: first %q, ready after %s", victim, first, time.Since(t1).Round(time.Millisecond))
	waitNextHops(t, ip, nodeAddrs(t, nodes, lab.IPv4))
	figure(t, "bgp-restart-nexthop-back-ipv4", time.Since(t1)) // from the restart: includes the speaker's start
}

// TestBGPGracefulRestart: with enableGracefulRestart on its peers, a
// speaker restarted (SIGTERM, as a rolling update does) leaves the
// sessions for its exit to close without a NOTIFICATION: the router keeps
// its routes while it restarts, and its next hop never leaves the router's
// kernel routes, IPv4 and IPv6; so too with BFD on the peers. On a cordoned node the
// speaker closes the session with a NOTIFICATION all the same, and the
// next hop goes at once.
func TestBGPGracefulRestart(t *testing.T) {
	nodes := bgpNodes(t)
	ctx := ctxT(t)
	for _, name := range []string{peerBGPv4, peerBGPv6} {
		var peer v1beta1.BGPPeer
		if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: name}, &peer); err != nil {
			t.Fatal(err)
		}
		peer.Spec.EnableGracefulRestart = true
		if err := cl.Update(ctx, &peer); err != nil {
			t.Fatal(err)
		}
	}
	victim := nodes[0]
	addr, err := drv.NodeAddress(victim, lab.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	// The sessions are made again with the capability.
	for _, f := range families {
		a, err := drv.NodeAddress(victim, f)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, fmt.Sprintf("the router's %s session with %s has graceful restart", f, victim), func() (bool, string) {
			n := routerNeighbor(t, a)
			return n.State == "Established" && n.GracefulRestart.Remote == "Restart", fmt.Sprintf("%s, remote mode %q", n.State, n.GracefulRestart.Remote)
		})
	}
	waitSessions(t)
	// One Service per family; their routes in the router's kernel.
	type route struct {
		prefix netip.Prefix
		all    []string
	}
	var routes []route
	for _, f := range families {
		name := "bgp-gr-" + strings.ToLower(string(f))
		newService(t, name, family(f), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
		ip := waitIPs(t, name, 1)[0]
		r := route{hostPrefix(ip), nodeAddrs(t, nodes, f)}
		waitNextHops(t, ip, r.all)
		routes = append(routes, r)
	}
	ip, all := routes[0].prefix.Addr(), routes[0].all // IPv4, for the cordoned node below

	// The router's kernel routes, sampled through a restart.
	restart := func(label string) {
		t.Helper()
		var missing []string
		sampled := 0
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				for _, r := range routes {
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					kern, err := lab.KernelNextHops(sctx, drv, r.prefix)
					cancel()
					sampled++
					if err != nil || fmt.Sprint(kern) != fmt.Sprint(r.all) {
						missing = append(missing, fmt.Sprintf("%s: %s via %v %v", time.Now().Format("15:04:05.000"), r.prefix, kern, err))
					}
				}
			}
		}()
		t0 := time.Now()
		if err := drv.RestartSpeaker(ctx, victim); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the router's session with the restarted "+victim+" is established again", func() (bool, string) {
			st := routerNeighbor(t, addr).State
			return st == "Established", "state " + st
		})
		for _, r := range routes {
			waitNextHops(t, r.prefix.Addr(), r.all)
		}
		time.Sleep(200 * time.Millisecond) // the stale paths replaced
		close(stop)
		<-done
		t.Logf("restart of %s%s: the router's session back after %s; %d samples of the kernel routes", victim, label, time.Since(t0).Round(time.Millisecond), sampled)
		if len(missing) > 0 {
			t.Errorf("the router's kernel route lacked a next hop during the restart%s (%d of %d samples):\n%s", label, len(missing), sampled, strings.Join(missing, "\n"))
		}
		for _, f := range families {
			a, _ := drv.NodeAddress(victim, f)
			if n := routerNeighbor(t, a); strings.Contains(n.LastReset, "Notification") {
				t.Errorf("the router's last reset of %s's %s session%s: %q, want the connection closed without a NOTIFICATION", victim, f, label, n.LastReset)
			}
		}
	}
	restart("")
	// With BFD the speaker keeps its BFD session up until it exits: an
	// AdminDown, or BFD gone quiet before the connection closed, would
	// make the router close the session and drop the routes.
	useBFD(t, nodes)
	restart(" with BFD")

	// Cordoned: the node is on its way to maintenance; its routes go now.
	setNode(t, victim, func(n *corev1.Node) { n.Spec.Unschedulable = true }, func(n *corev1.Node) { n.Spec.Unschedulable = false }, false)
	// The speaker reads its Node from its cache.
	time.Sleep(500 * time.Millisecond)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = drv.RestartSpeaker(context.Background(), victim)
		}
	})
	t1 := time.Now()
	if err := drv.SignalSpeaker(ctx, victim, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitKernelNextHops(t, 2*time.Second, "the router's kernel route loses the cordoned "+victim, ip, nodeAddrs(t, nodes[1:], lab.IPv4))
	figure(t, "bgp-sigterm-cordoned-nexthop-gone-ipv4", time.Since(t1))
	// The NOTIFICATION and BFD's AdminDown go at once; either may close
	// the session first: the speaker's NOTIFICATION received, or BFD down
	// received (the router then sends its own NOTIFICATION). Not the
	// connection merely closed, as when it is left to the exit.
	if n := routerNeighbor(t, addr); !strings.Contains(n.LastReset, "Notification") && !strings.Contains(n.LastReset, "BFD") {
		t.Errorf("the router's last reset of the cordoned %s: %q, want a NOTIFICATION (either way) or BFD down", victim, n.LastReset)
	}
	if err := drv.RestartSpeaker(ctx, victim); err != nil {
		t.Fatal(err)
	}
	restarted = true
	waitNextHops(t, ip, all)
}

// bgpNodes sets the suite's BGP configuration up and returns the nodes,
// for a test that stops one of them while another stays a next hop.
func bgpNodes(t *testing.T) []string {
	t.Helper()
	requireLab(t)
	requireSpeaker(t)
	setupBGP(t)
	nodes := drv.NodeNames()
	if len(nodes) < 2 {
		t.Skip("needs two nodes")
	}
	return nodes
}

// TestBGPBFD: with a BFDProfile on the peers every node runs BFD with the
// router (whose neighbors are configured for BFD), and a node that freezes
// (SIGSTOP: no FIN, no NOTIFICATION) loses its next hop in the router's
// kernel within BFD's detection time (3 x 100 ms), not the BGP hold time
// (3 s). Thawed, it is back; restarted, it is back within 1.5 s.
func TestBGPBFD(t *testing.T) {
	nodes := bgpNodes(t)
	ctx := ctxT(t)
	useBFD(t, nodes)

	newService(t, "bgp-bfd", family(lab.IPv4), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
	ip := waitIPs(t, "bgp-bfd", 1)[0]
	waitNextHops(t, ip, nodeAddrs(t, nodes, lab.IPv4))

	victim := nodes[0]
	frozen := true
	t.Cleanup(func() {
		if frozen {
			_ = drv.SignalSpeaker(context.Background(), victim, syscall.SIGCONT)
		}
	})
	t0 := time.Now()
	if err := drv.SignalSpeaker(ctx, victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitKernelNextHops(t, 5*time.Second, "the router's kernel route loses the frozen "+victim, ip, nodeAddrs(t, nodes[1:], lab.IPv4))
	took := time.Since(t0)
	figure(t, "bgp-sigstop-nexthop-gone-bfd-ipv4", took)
	// The BGP hold time is 3 s: only BFD takes the path away this fast.
	if took > 1500*time.Millisecond {
		t.Errorf("the frozen node's next hop went after %s; with BFD (detection 300 ms) it should go well before the hold time (3 s)", took)
	}
	addr, _ := drv.NodeAddress(victim, lab.IPv4)
	if n := routerNeighbor(t, addr); !strings.Contains(n.LastNotification, "BFD Down") {
		t.Errorf("the router's last NOTIFICATION to %s: %q (reset: %q), want Cease/BFD Down", victim, n.LastNotification, n.LastReset)
	}

	t1 := time.Now()
	if err := drv.SignalSpeaker(ctx, victim, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen = false
	waitKernelNextHops(t, 10*time.Second, "the router's kernel route has the thawed "+victim+" again", ip, nodeAddrs(t, nodes, lab.IPv4))
	figure(t, "bgp-sigcont-nexthop-back-bfd-ipv4", time.Since(t1))

	// Restarted, the speaker is back once BFD is: the router opens the
	// session then, instead of 2 s after the NOTIFICATION, and GoBGP's
	// own first attempt comes 1 to 2 s after the start.
	// The figure counts from the restart (the old process's shutdown
	// included), the check from the new one running.
	t2 := time.Now()
	if err := drv.RestartSpeaker(ctx, victim); err != nil {
		t.Fatal(err)
	}
	t3 := time.Now()
	waitKernelNextHops(t, 10*time.Second, "the router's kernel route has the restarted "+victim+" again", ip, nodeAddrs(t, nodes, lab.IPv4))
	figure(t, "bgp-restart-nexthop-back-bfd-ipv4", time.Since(t2))
	if took := time.Since(t3); took > 1500*time.Millisecond {
		t.Errorf("the restarted %s's next hop came back %s after it ran; with BFD the router opens the session once BFD is up", victim, took)
	}
}

// useBFD puts a BFDProfile (100 ms, x3) on the suite's peers, until the
// test ends, and waits until every node and the router have BFD up.
func useBFD(t *testing.T, nodes []string) {
	t.Helper()
	ms := uint32(100)
	prof := &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "e2e-fast", Namespace: v1beta1.Namespace},
		Spec: v1beta1.BFDProfileSpec{ReceiveInterval: &ms, TransmitInterval: &ms}}
	ctx := ctxT(t)
	_ = deleteAndWait(ctx, prof.DeepCopy())
	if err := cl.Create(ctx, prof); err != nil {
		t.Fatal(err)
	}
	setBFD := func(ctx context.Context, name string) error {
		for _, p := range []string{peerBGPv4, peerBGPv6} {
			var peer v1beta1.BGPPeer
			if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: p}, &peer); err != nil {
				return err
			}
			peer.Spec.BFDProfile = name
			if err := cl.Update(ctx, &peer); err != nil {
				return err
			}
		}
		return nil
	}
	t.Cleanup(func() {
		_ = setBFD(context.Background(), "")
		_ = deleteAndWait(context.Background(), prof)
	})
	if err := setBFD(ctx, prof.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "every node's BGPSessionStatus shows BFD Up, and so does the router", func() (bool, string) {
		var list v1beta1.BGPSessionStatusList
		if err := cl.List(context.Background(), &list, client.InNamespace(v1beta1.Namespace)); err != nil {
			return false, err.Error()
		}
		var notUp []string
		for _, s := range list.Items {
			if s.Status.BFDState != "Up" {
				notUp = append(notUp, fmt.Sprintf("%s/%s=%q", s.Status.Node, s.Status.Peer, s.Status.BFDState))
			}
		}
		if len(list.Items) < 2*len(nodes) || len(notUp) > 0 {
			return false, fmt.Sprintf("%d statuses, BFD not up: %v", len(list.Items), notUp)
		}
		peers, err := routerBFDPeers(t)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			for _, f := range []lab.Family{lab.IPv4, lab.IPv6} {
				a, _ := drv.NodeAddress(n, f)
				if peers[a.String()] != "up" {
					return false, fmt.Sprintf("router's BFD peers %v", peers)
				}
			}
		}
		return true, ""
	})

}

// waitKernelNextHops polls the router's kernel route to ip until its next
// hops are want (sorted), within d.
func waitKernelNextHops(t *testing.T, d time.Duration, what string, ip netip.Addr, want []string) {
	t.Helper()
	eventually(t, d, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		kern, err := lab.KernelNextHops(ctx, drv, hostPrefix(ip))
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(kern) == fmt.Sprint(want), fmt.Sprintf("kernel %v", kern)
	})
}

// routerBFDPeers returns the router's BFD sessions: peer address -> status.
func routerBFDPeers(t *testing.T) (map[string]string, error) {
	t.Helper()
	out, err := drv.Vtysh(ctxT(t), "show bfd peers json")
	if err != nil {
		return nil, err
	}
	var list []struct {
		Peer   string `json:"peer"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	m := map[string]string{}
	for _, p := range list {
		m[p.Peer] = p.Status
	}
	return m, nil
}

// setupBGP creates the peers (the router, per family: the IPv4 one with
// its peerASN, the IPv6 one with dynamicASN external), the BGP pool and
// its BGPAdvertisement (with a community and a large community), removed
// when the test ends, and waits until every node's sessions are up.
func setupBGP(t *testing.T) {
	t.Helper()
	r := drv.Router()
	objs := []client.Object{
		&v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: peerBGPv4, Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPPeerSpec{MyASN: r.NodeASN, PeerASN: r.ASN, PeerAddress: r.IPv4.String()}},
		&v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: peerBGPv6, Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPPeerSpec{MyASN: r.NodeASN, DynamicASN: v1beta1.DynamicASNExternal, PeerAddress: r.IPv6.String()}},
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: poolBGP, Namespace: v1beta1.Namespace},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: plan.BGP.Addresses(), AutoAssign: ptr.To(false)}},
		&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: poolBGP, Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{poolBGP}, Communities: []string{commBGP, "large:" + largeBGP}}},
	}
	ctx := ctxT(t)
	for _, o := range objs {
		_ = deleteAndWait(ctx, o.DeepCopyObject().(client.Object))
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
		t.Cleanup(func() { _ = deleteAndWait(context.Background(), o) })
	}
	waitSessions(t)
}

// waitSessions waits until every node reports its sessions with both
// peers Established in its BGPSessionStatus objects, with the router's AS
// (for the dynamic peer, learned from the router's OPEN).
func waitSessions(t *testing.T) {
	t.Helper()
	asn := drv.Router().ASN
	eventually(t, 30*time.Second, "every node's BGPSessionStatus is Established", func() (bool, string) {
		var list v1beta1.BGPSessionStatusList
		if err := cl.List(context.Background(), &list, client.InNamespace(v1beta1.Namespace)); err != nil {
			return false, err.Error()
		}
		status := map[string]v1beta1.BGPSessionStatusStatus{}
		for _, s := range list.Items {
			status[s.Status.Node+"/"+s.Status.Peer] = s.Status
		}
		var missing []string
		for _, n := range drv.NodeNames() {
			for _, p := range []string{peerBGPv4, peerBGPv6} {
				if st := status[n+"/"+p]; st.State != "Established" || st.PeerASN != asn {
					missing = append(missing, fmt.Sprintf("%s/%s=%q AS %d", n, p, st.State, st.PeerASN))
				}
			}
		}
		return len(missing) == 0, fmt.Sprintf("not established with AS %d: %s", asn, strings.Join(missing, " "))
	})
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

// frrPathCommunities returns, per path of prefix in FRR, its standard and
// large communities ("65000:300 large:64513:1:2").
func frrPathCommunities(t *testing.T, p netip.Prefix) []string {
	t.Helper()
	fam := "ipv4"
	if p.Addr().Is6() {
		fam = "ipv6"
	}
	out, err := drv.Vtysh(ctxT(t), "show bgp "+fam+" unicast "+p.String()+" json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths []struct {
			Community struct {
				List []string `json:"list"`
			} `json:"community"`
			LargeCommunity struct {
				List []string `json:"list"`
			} `json:"largeCommunity"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var res []string
	for _, path := range doc.Paths {
		c := strings.Join(path.Community.List, " ")
		for _, l := range path.LargeCommunity.List {
			c += " large:" + l
		}
		res = append(res, c)
	}
	return res
}

// lastReset is the router's reason for the last reset of its session with
// addr.
func lastReset(t *testing.T, addr netip.Addr) string {
	t.Helper()
	return routerNeighbor(t, addr).LastReset
}

// routerNeighbor is what the router says of its session with addr.
type neighborView struct {
	LastReset        string `json:"lastResetDueTo"`
	LastNotification string `json:"lastNotificationReason"`
	State            string `json:"bgpState"`
	GracefulRestart  struct {
		Remote string `json:"remoteGrMode"`
	} `json:"gracefulRestartInfo"`
}

func routerNeighbor(t *testing.T, addr netip.Addr) neighborView {
	t.Helper()
	out, err := drv.Vtysh(ctxT(t), "show bgp neighbors "+addr.String()+" json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]neighborView
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return doc[addr.String()]
}

// speakerReadyz asks node's speaker for /readyz (from the node itself) and
// returns the HTTP status and the body.
func speakerReadyz(t *testing.T, node string) (int, string) {
	t.Helper()
	addr, err := drv.NodeAddress(node, lab.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/readyz", net.JoinHostPort(addr.String(), strconv.Itoa(lab.HealthPort)))
	out, err := drv.Exec(ctxT(t), node, "curl", "-s", "-m", "2", "-w", "\n%{http_code}", url)
	if err != nil {
		return 0, err.Error()
	}
	text := strings.TrimSpace(string(out))
	i := strings.LastIndex(text, "\n")
	n, _ := strconv.Atoi(text[i+1:])
	return n, strings.TrimSpace(text[:max(i, 0)])
}

// serviceBGPStatus returns, per node, the prefixes and peers of the
// Service's ServiceBGPStatus objects.
func serviceBGPStatus(ctx context.Context, svc string) (map[string]string, error) {
	var list v1beta1.ServiceBGPStatusList
	if err := cl.List(ctx, &list, client.InNamespace(v1beta1.Namespace)); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range list.Items {
		if s.Status.ServiceName == svc && s.Status.ServiceNamespace == testNS {
			out[s.Status.Node] = strings.Join(s.Status.Prefixes, ",") + " -> " + strings.Join(s.Status.Peers, ",")
		}
	}
	return out, nil
}

func bgpScenario(t *testing.T, fam lab.Family) {
	name := "bgp-" + string(fam)
	newService(t, name, family(fam), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
	ip := waitIPs(t, name, 1)[0]
	if !plan.BGP.Contains(ip) {
		t.Fatalf("%s is not from pool %s", ip, poolBGP)
	}
	nodes := drv.NodeNames()
	waitNextHops(t, ip, nodeAddrs(t, nodes, fam))

	// Each path carries the advertisement's communities, and only them.
	for _, c := range frrPathCommunities(t, hostPrefix(ip)) {
		if c != commBGP+" large:"+largeBGP {
			t.Errorf("a path of %s carries communities %q, want %q", ip, c, commBGP+" large:"+largeBGP)
		}
	}

	// Each node says what it advertises, and to which peers.
	peers := peerBGPv4 + "," + peerBGPv6
	eventually(t, 20*time.Second, "every node's ServiceBGPStatus for "+name, func() (bool, string) {
		st, err := serviceBGPStatus(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			if st[n] != hostPrefix(ip).String()+" -> "+peers {
				return false, fmt.Sprintf("%v", st)
			}
		}
		return len(st) == len(nodes), fmt.Sprintf("%v", st)
	})

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
	eventually(t, 20*time.Second, "the ServiceBGPStatus objects of "+name+" are gone", func() (bool, string) {
		st, err := serviceBGPStatus(context.Background(), name)
		return err == nil && len(st) == 0, fmt.Sprintf("%v %v", st, err)
	})
}

// bgpLocalScenario: with externalTrafficPolicy: Local only nodes with an
// endpoint are next hops, and the next hops follow the endpoints.
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

	// The endpoints move to the last node only: the others withdraw.
	last := nodes[len(nodes)-1:]
	svc := getService(t, name)
	svc.Annotations[endpoints.AnnotationEndpointNodes] = joinComma(last)
	if err := cl.Update(ctxT(t), svc); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, ip, nodeAddrs(t, last, lab.IPv4))
	waitCurl(t, lab.HostClient, ip, 80, last[0], 10*time.Second)

	// No endpoint anywhere: nobody announces.
	svc = getService(t, name)
	svc.Annotations[endpoints.AnnotationEndpointNodes] = ""
	if err := cl.Update(ctxT(t), svc); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, ip, nil)
}

// bgpExclusionScenario: an excluded node and a node whose network is
// unavailable withdraw their routes; only the eligible node is a next hop.
func bgpExclusionScenario(t *testing.T, eligible string) {
	setupBGP(t)
	name := "bgp-exclude"
	newService(t, name, family(lab.IPv6), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
	ip := waitIPs(t, name, 1)[0]
	waitNextHops(t, ip, nodeAddrs(t, []string{eligible}, lab.IPv6))
	waitCurl(t, lab.HostClient, ip, 80, eligible, 10*time.Second)
}

func joinComma(s []string) string {
	return strings.Join(s, ",")
}
