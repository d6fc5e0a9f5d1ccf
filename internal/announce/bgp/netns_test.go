package bgp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/announce/internal/nstest"
	"github.com/herald-lb/herald/internal/model"
)

// The tests below run the speaker against FRR, each in network namespaces
// of its own: a router namespace with a bridge (the nodes' segment) and
// node namespaces on it; all addresses are private test ranges.

const (
	rtrV4    = "172.31.240.1"
	rtrV6    = "fd00:40::1"
	routerAS = 64512
	nodeAS   = 64513
)

func nodeV4(i int) string { return fmt.Sprintf("172.31.240.%d", 10+i) }
func nodeV6(i int) string { return fmt.Sprintf("fd00:40::%d", 10+i) }

// segment is a router namespace whose bridge br0 joins n node namespaces.
type segment struct {
	rtr   *nstest.NS
	nodes []*nstest.NS
}

func newSegment(t *testing.T, n int) *segment {
	requireFRR(t)
	s := &segment{rtr: nstest.New(t, "rtr")}
	s.rtr.Sysctl(t, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.fib_multipath_hash_policy=1")
	s.rtr.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	s.rtr.Run(t, "ip", "link", "set", "br0", "up")
	s.rtr.Run(t, "ip", "addr", "add", rtrV4+"/24", "dev", "br0")
	s.rtr.Run(t, "ip", "addr", "add", rtrV6+"/64", "dev", "br0", "nodad")
	for i := 1; i <= n; i++ {
		ns := nstest.New(t, fmt.Sprintf("n%d", i))
		port := fmt.Sprintf("p%d", i)
		nstest.Veth(t, ns, "eth0", s.rtr, port)
		s.rtr.Run(t, "ip", "link", "set", port, "master", "br0")
		ns.Run(t, "ip", "addr", "add", nodeV4(i)+"/24", "dev", "eth0")
		ns.Run(t, "ip", "addr", "add", nodeV6(i)+"/64", "dev", "eth0", "nodad")
		s.nodes = append(s.nodes, ns)
	}
	return s
}

// frrConf renders a bgpd.conf for AS routerAS with these neighbor lines
// (each "ADDR remote-as N ..." becomes "neighbor ADDR ..."); every
// neighbor has both families active, timers 1/3 and connect 1, and ECMP
// is on.
func frrConf(routerID string, neighbors ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname rtr\n!\nrouter bgp %d\n bgp router-id %s\n", routerAS, routerID)
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n bgp log-neighbor-changes\n")
	var addrs []string
	for _, n := range neighbors {
		for _, line := range strings.Split(n, ";") {
			fmt.Fprintf(&b, " neighbor %s\n", strings.TrimSpace(line))
		}
		addr := strings.Fields(n)[0]
		addrs = append(addrs, addr)
		fmt.Fprintf(&b, " neighbor %s timers 1 3\n neighbor %s timers connect 1\n", addr, addr)
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		fmt.Fprintf(&b, " address-family %s unicast\n  maximum-paths 8\n  maximum-paths ibgp 8\n", fam)
		for _, a := range addrs {
			fmt.Fprintf(&b, "  neighbor %s activate\n", a)
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString("exit\n!\n")
	return b.String()
}

var (
	vip4   = netip.MustParsePrefix("10.77.0.1/32")
	vip6   = netip.MustParsePrefix("fd00:77::1/128")
	agg4   = netip.MustParsePrefix("10.77.1.0/24")
	c100   = model.Community{Value: 65000<<16 | 100}
	c200   = model.Community{Value: 65000<<16 | 200}
	c300   = model.Community{Value: 65000<<16 | 300}
	large  = model.Community{Large: true, Global: 1, Local1: 2, Local2: 3}
	large2 = model.Community{Large: true, Global: 4294967295, Local1: 0, Local2: 7}
)

func fastPeer(name, addr string, myAS uint32) Peer {
	return Peer{Name: name, Address: netip.MustParseAddr(addr), MyASN: myAS, PeerASN: routerAS,
		HoldTime: 3 * time.Second, KeepaliveTime: time.Second, ConnectTime: time.Second}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestFRRSessionsAndAttributes: one speaker with an IPv4 peer (eBGP,
// graceful restart) and an IPv6 peer (iBGP: another local AS) to one FRR.
// Both families go over both sessions with the node's own next hop of
// each family; each peer gets its own communities, large communities and
// (iBGP) local preference; the tags used inside never reach the router;
// changing one peer's routes leaves the sessions up; restricting a prefix
// to one peer withdraws it from the other.
func TestFRRSessionsAndAttributes(t *testing.T) {
	seg := newSegment(t, 1)
	r := startFRR(t, seg.rtr, frrConf(rtrV4,
		nodeV4(1)+" remote-as 64513",
		nodeV6(1)+" remote-as 64512"))
	sp := startSpeaker(t, seg.nodes[0])

	p4 := fastPeer("r4", rtrV4, nodeAS)
	p4.GracefulRestart = true
	p6 := fastPeer("r6", rtrV6, routerAS) // iBGP
	nh4, nh6 := addr(nodeV4(1)), addr(nodeV6(1))
	p4.Routes = []Route{
		{Prefix: vip4, NextHop: nh4, Communities: []model.Community{c100, large}},
		{Prefix: vip6, NextHop: nh6, Communities: []model.Community{c200}},
		{Prefix: agg4, NextHop: nh4},
	}
	p6.Routes = []Route{
		{Prefix: vip4, NextHop: nh4, Communities: []model.Community{c300, large2}, LocalPref: 250},
		{Prefix: vip6, NextHop: nh6, LocalPref: 150},
	}
	desired := Desired{RouterID: nh4, Peers: []Peer{p4, p6}}
	sp.reconcile(t, desired)

	r.waitEstablished(t, 10*time.Second, nodeV4(1), nodeV6(1))
	sp.waitSession(t, "r4", StateEstablished, 5*time.Second)
	sp.waitSession(t, "r6", StateEstablished, 5*time.Second)

	n4 := r.neighbor(t, nodeV4(1))
	if n4.LocalAS != routerAS || n4.RemoteAS != nodeAS || n4.HoldTimeMsecs != 3000 {
		t.Errorf("IPv4 session: remote AS %d, hold %dms; want AS %d, 3000ms", n4.RemoteAS, n4.HoldTimeMsecs, nodeAS)
	}
	if gr := n4.Capabilities.GracefulRestart; gr != "advertisedAndReceived" && gr != "received" {
		t.Errorf("IPv4 session: graceful restart capability %q, want received from the speaker", gr)
	}
	if n6 := r.neighbor(t, nodeV6(1)); n6.RemoteAS != routerAS {
		t.Errorf("IPv6 session: remote AS %d, want %d (iBGP, its own local AS)", n6.RemoteAS, routerAS)
	}

	wantPaths := func(prefix netip.Prefix, want []path) {
		t.Helper()
		var got []path
		if !nstest.Eventually(10*time.Second, func() bool { got = r.paths(t, prefix.String()); return cmp.Equal(got, want) }) {
			t.Fatalf("FRR's paths for %s:\n%s", prefix, cmp.Diff(want, got))
		}
	}
	wantPaths(vip4, []path{
		{From: nodeV4(1), NextHop: nodeV4(1), Communities: "65000:100 large:1:2:3"},
		{From: nodeV6(1), NextHop: nodeV4(1), Communities: "65000:300 large:4294967295:0:7", LocalPref: 250},
	})
	wantPaths(vip6, []path{
		{From: nodeV4(1), NextHop: nodeV6(1), Communities: "65000:200"},
		{From: nodeV6(1), NextHop: nodeV6(1), LocalPref: 150},
	})
	wantPaths(agg4, []path{{From: nodeV4(1), NextHop: nodeV4(1)}})

	var st []SessionState
	if !nstest.Eventually(5*time.Second, func() bool {
		st = sp.sessions(t)
		return len(st) == 2 && st[0].PrefixesSent == 3 && st[1].PrefixesSent == 2
	}) {
		t.Fatalf("sessions %+v: want 3 prefixes sent to r4, 2 to r6", st)
	}

	t.Run("same desired state: nothing sent", func(t *testing.T) {
		before := sp.sessions(t)
		sp.reconcile(t, desired)
		time.Sleep(300 * time.Millisecond)
		after := sp.sessions(t)
		for i := range before {
			if after[i].UpdatesSent != before[i].UpdatesSent || !after[i].Since.Equal(before[i].Since) {
				t.Errorf("%s: %+v -> %+v: a repeated Reconcile sent updates or touched the session", before[i].Peer, before[i], after[i])
			}
		}
	})

	t.Run("one peer's attributes change, sessions stay", func(t *testing.T) {
		est := r.neighbor(t, nodeV4(1)).EstablishedCount
		est6 := r.neighbor(t, nodeV6(1)).EstablishedCount
		desired.Peers[0].Routes[0].Communities = []model.Community{c200}
		sp.reconcile(t, desired)
		wantPaths(vip4, []path{
			{From: nodeV4(1), NextHop: nodeV4(1), Communities: "65000:200"},
			{From: nodeV6(1), NextHop: nodeV4(1), Communities: "65000:300 large:4294967295:0:7", LocalPref: 250},
		})
		if a, b := r.neighbor(t, nodeV4(1)).EstablishedCount, r.neighbor(t, nodeV6(1)).EstablishedCount; a != est || b != est6 {
			t.Errorf("sessions re-established (%d->%d, %d->%d) by a route change", est, a, est6, b)
		}
	})

	t.Run("a prefix restricted to one peer is withdrawn from the other", func(t *testing.T) {
		desired.Peers[1].Routes = desired.Peers[1].Routes[1:] // vip4 no longer to r6
		sp.reconcile(t, desired)
		wantPaths(vip4, []path{{From: nodeV4(1), NextHop: nodeV4(1), Communities: "65000:200"}})
		wantPaths(vip6, []path{
			{From: nodeV4(1), NextHop: nodeV6(1), Communities: "65000:200"},
			{From: nodeV6(1), NextHop: nodeV6(1), LocalPref: 150},
		})
	})

	t.Run("a peer removed gets a NOTIFICATION, the other stays", func(t *testing.T) {
		est := r.neighbor(t, nodeV4(1)).EstablishedCount
		desired.Peers = desired.Peers[:1]
		sp.reconcile(t, desired)
		var n frrNeighbor
		if !nstest.Eventually(5*time.Second, func() bool { n = r.neighbor(t, nodeV6(1)); return n.State != "Established" }) {
			t.Fatalf("FRR's session with the removed peer is still %s", n.State)
		}
		if !strings.Contains(n.LastReset, "Notification received") {
			t.Errorf("removed peer: FRR's last reset %q, want a NOTIFICATION received", n.LastReset)
		}
		wantPaths(vip6, []path{{From: nodeV4(1), NextHop: nodeV6(1), Communities: "65000:200"}})
		if got := r.neighbor(t, nodeV4(1)); got.State != "Established" || got.EstablishedCount != est {
			t.Errorf("the remaining session: %+v, want it untouched", got)
		}
		if st := sp.sessions(t); len(st) != 1 || st[0].Peer != "r4" {
			t.Errorf("sessions %+v, want r4 only", st)
		}
	})

	t.Run("every peer removed, no router ID needed", func(t *testing.T) {
		// The node's address (and so its router ID) is not known when
		// no BGPPeer is left: removing them all must still work.
		sp.reconcile(t, Desired{})
		var n frrNeighbor
		if !nstest.Eventually(5*time.Second, func() bool { n = r.neighbor(t, nodeV4(1)); return n.State != "Established" }) {
			t.Fatalf("FRR's session is still %s after every peer was removed", n.State)
		}
		if !strings.Contains(n.LastReset, "Notification received") {
			t.Errorf("FRR's last reset %q, want a NOTIFICATION received", n.LastReset)
		}
		if st := sp.sessions(t); len(st) != 0 {
			t.Errorf("sessions %+v, want none", st)
		}
		// Back, for the shutdown below; without graceful restart, whose
		// sessions the shutdown leaves open (TestFRRGracefulRestart).
		desired.Peers[0].GracefulRestart = false
		sp.reconcile(t, desired)
		sp.waitSession(t, "r4", StateEstablished, 10*time.Second)
	})

	t.Run("graceful shutdown sends a NOTIFICATION", func(t *testing.T) {
		took := sp.stop(t)
		t.Logf("shutdown took %s", took)
		n := r.neighbor(t, nodeV4(1))
		if n.State == "Established" || !strings.Contains(n.LastReset, "Notification received") {
			t.Errorf("after the speaker stopped FRR shows state %s, last reset %q; want a NOTIFICATION received", n.State, n.LastReset)
		}
		// zebra removes the kernel route a moment after bgpd saw the
		// NOTIFICATION; without one it would wait for the hold time (3 s).
		var got []string
		if !nstest.Eventually(time.Second, func() bool { got = kernelNextHops(t, seg.rtr, vip4.String()); return len(got) == 0 }) {
			t.Errorf("route %s still in the router's kernel via %v a second after the shutdown", vip4, got)
		}
		if took > time.Second {
			t.Errorf("shutdown took %s", took)
		}
	})
}

// TestFRRECMPAndWithdraw: two speakers announce one address each with its
// own next hop; the router installs an ECMP route over both, in both
// families. A withdrawal removes one next hop; a speaker killed (no
// NOTIFICATION, the kernel closes the connection) loses its next hop too.
func TestFRRECMPAndWithdraw(t *testing.T) {
	seg := newSegment(t, 2)
	r := startFRR(t, seg.rtr, frrConf(rtrV4,
		nodeV4(1)+" remote-as 64513", nodeV4(2)+" remote-as 64513",
		nodeV6(1)+" remote-as 64513", nodeV6(2)+" remote-as 64513"))
	desired := func(i int, routes bool) Desired {
		p4, p6 := fastPeer("r4", rtrV4, nodeAS), fastPeer("r6", rtrV6, nodeAS)
		if routes {
			p4.Routes = []Route{{Prefix: vip4, NextHop: addr(nodeV4(i))}}
			p6.Routes = []Route{{Prefix: vip6, NextHop: addr(nodeV6(i))}}
		}
		return Desired{RouterID: addr(nodeV4(i)), Peers: []Peer{p4, p6}}
	}
	var sps []*speaker
	for i := 1; i <= 2; i++ {
		sp := startSpeaker(t, seg.nodes[i-1])
		sp.reconcile(t, desired(i, true))
		sps = append(sps, sp)
	}
	r.waitEstablished(t, 10*time.Second, nodeV4(1), nodeV4(2), nodeV6(1), nodeV6(2))

	wantKernel := func(prefix netip.Prefix, want ...string) {
		t.Helper()
		var got []string
		if !nstest.Eventually(10*time.Second, func() bool { got = kernelNextHops(t, seg.rtr, prefix.String()); return cmp.Equal(got, want) }) {
			t.Fatalf("router's kernel route for %s via %v, want %v", prefix, got, want)
		}
	}
	wantKernel(vip4, nodeV4(1), nodeV4(2))
	wantKernel(vip6, nodeV6(1), nodeV6(2))

	sps[0].reconcile(t, desired(1, false))
	wantKernel(vip4, nodeV4(2))
	wantKernel(vip6, nodeV6(2))
	if st := sps[0].sessions(t); st[0].State != StateEstablished || st[0].PrefixesSent != 0 {
		t.Errorf("after the withdrawal: %+v, want the session up with nothing sent", st[0])
	}

	sps[0].reconcile(t, desired(1, true))
	wantKernel(vip4, nodeV4(1), nodeV4(2))

	sps[1].kill()
	wantKernel(vip4, nodeV4(1))
	wantKernel(vip6, nodeV6(1))
}

// TestFRRPassword: TCP MD5. With the router's password the session comes
// up; with a wrong one it does not; fixing the password (a changed peer
// is re-created) brings it up.
func TestFRRPassword(t *testing.T) {
	seg := newSegment(t, 1)
	r := startFRR(t, seg.rtr, frrConf(rtrV4, nodeV4(1)+" remote-as 64513;"+nodeV4(1)+" password s3cr3t-Key"))
	sp := startSpeaker(t, seg.nodes[0])
	p := fastPeer("r4", rtrV4, nodeAS)
	p.Routes = []Route{{Prefix: vip4, NextHop: addr(nodeV4(1))}}

	p.Password = "wrong"
	sp.reconcile(t, Desired{RouterID: addr(nodeV4(1)), Peers: []Peer{p}})
	time.Sleep(5 * time.Second) // several connection attempts both ways
	if n := r.neighbor(t, nodeV4(1)); n.State == "Established" {
		t.Fatalf("session up with a wrong password")
	}
	if st := sp.sessions(t); st[0].State == StateEstablished {
		t.Fatalf("speaker says %+v with a wrong password", st[0])
	}

	p.Password = "s3cr3t-Key"
	sp.reconcile(t, Desired{RouterID: addr(nodeV4(1)), Peers: []Peer{p}})
	r.waitEstablished(t, 10*time.Second, nodeV4(1))
	if got := r.paths(t, vip4.String()); len(got) != 1 {
		t.Fatalf("paths %+v, want the route over the MD5 session", got)
	}
}

// TestFRRMultiHop: the router is two hops away, behind a plain router
// (forwarding namespace); the session runs between the node's loopback
// address (sourceAddress) and the router, on a non-default port. Without
// ebgpMultiHop the speaker's TTL-1 packets die on the way; with it the
// session comes up and the route arrives with the node's next hop.
func TestFRRMultiHop(t *testing.T) {
	requireFRR(t)
	node, mid, rtr := nstest.New(t, "node"), nstest.New(t, "mid"), nstest.New(t, "rtr")
	nstest.Veth(t, node, "eth0", mid, "eth0")
	nstest.Veth(t, mid, "eth1", rtr, "eth0")
	mid.Sysctl(t, "net.ipv4.ip_forward=1")
	node.Run(t, "ip", "addr", "add", "172.31.241.2/24", "dev", "eth0")
	node.Run(t, "ip", "addr", "add", "10.255.0.11/32", "dev", "lo")
	node.Run(t, "ip", "route", "add", "default", "via", "172.31.241.1")
	mid.Run(t, "ip", "addr", "add", "172.31.241.1/24", "dev", "eth0")
	mid.Run(t, "ip", "addr", "add", "172.31.242.1/24", "dev", "eth1")
	mid.Run(t, "ip", "route", "add", "10.255.0.11/32", "via", "172.31.241.2")
	rtr.Run(t, "ip", "addr", "add", "172.31.242.2/24", "dev", "eth0")
	rtr.Run(t, "ip", "route", "add", "10.255.0.0/24", "via", "172.31.242.1")

	const loopback = "10.255.0.11"
	r := startFRR(t, rtr, frrConf("172.31.242.2", loopback+" remote-as 64513;"+loopback+" ebgp-multihop 255"), "-p", "1179")
	sp := startSpeaker(t, node)
	p := fastPeer("far", "172.31.242.2", nodeAS)
	p.Port = 1179
	p.SourceAddress = addr(loopback)
	p.Routes = []Route{{Prefix: vip4, NextHop: addr(loopback)}}

	sp.reconcile(t, Desired{RouterID: addr(loopback), Peers: []Peer{p}})
	time.Sleep(5 * time.Second)
	if n := r.neighbor(t, loopback); n.State == "Established" {
		t.Fatalf("session two hops away up without ebgpMultiHop")
	}

	p.EBGPMultiHop = true
	sp.reconcile(t, Desired{RouterID: addr(loopback), Peers: []Peer{p}})
	r.waitEstablished(t, 10*time.Second, loopback)
	sp.waitSession(t, "far", StateEstablished, 5*time.Second)
	want := []path{{From: loopback, NextHop: loopback}}
	var got []path
	if !nstest.Eventually(10*time.Second, func() bool { got = r.paths(t, vip4.String()); return cmp.Equal(got, want) }) {
		t.Fatalf("paths:\n%s", cmp.Diff(want, got))
	}
	var gws []string
	if !nstest.Eventually(2*time.Second, func() bool {
		gws = kernelNextHops(t, rtr, vip4.String())
		return cmp.Equal(gws, []string{"172.31.242.1"})
	}) {
		t.Errorf("router's kernel route for %s via %v, want via the middle router (recursive next hop)", vip4, gws)
	}
}

// TestFRRRouterIDChange: GoBGP has one router ID; a new one restarts the
// server, and so the sessions, and the routes come back. A second peer
// with the same address is refused and the first kept.
func TestFRRRouterIDChange(t *testing.T) {
	seg := newSegment(t, 1)
	r := startFRR(t, seg.rtr, frrConf(rtrV4, nodeV4(1)+" remote-as 64513"))
	sp := startSpeaker(t, seg.nodes[0])
	p := fastPeer("r4", rtrV4, nodeAS)
	p.Routes = []Route{{Prefix: vip4, NextHop: addr(nodeV4(1))}}
	sp.reconcile(t, Desired{RouterID: addr(nodeV4(1)), Peers: []Peer{p}})
	r.waitEstablished(t, 10*time.Second, nodeV4(1))

	dup := fastPeer("r4-again", rtrV4, nodeAS)
	b, _ := json.Marshal(Desired{RouterID: addr("10.255.255.1"), Peers: []Peer{p, dup}})
	if _, err := sp.h.Try("reconcile " + string(b)); err == nil || !strings.Contains(err.Error(), "already peer r4's") {
		t.Errorf("a second peer with the same address: %v, want it refused", err)
	}
	var rid string
	if !nstest.Eventually(15*time.Second, func() bool {
		var all map[string]struct {
			State    string `json:"bgpState"`
			RouterID string `json:"remoteRouterId"`
		}
		r.json(t, "show bgp neighbors "+nodeV4(1)+" json", &all)
		rid = all[nodeV4(1)].RouterID
		return all[nodeV4(1)].State == "Established" && rid == "10.255.255.1"
	}) {
		t.Fatalf("FRR sees router ID %s, want the new one on an established session", rid)
	}
	if !nstest.Eventually(10*time.Second, func() bool { return len(r.paths(t, vip4.String())) == 1 }) {
		t.Fatalf("route not back after the restart")
	}

	// No router ID any more (the node's Node object, and with it its
	// addresses, is gone) and no route: the server keeps its router ID
	// and session, and withdraws the route.
	p.Routes = nil
	sp.reconcile(t, Desired{Peers: []Peer{p}})
	if !nstest.Eventually(10*time.Second, func() bool { return len(r.paths(t, vip4.String())) == 0 }) {
		t.Fatalf("route still at the router after a pass without router ID and without routes")
	}
	var all map[string]struct {
		State    string `json:"bgpState"`
		RouterID string `json:"remoteRouterId"`
	}
	r.json(t, "show bgp neighbors "+nodeV4(1)+" json", &all)
	if n := all[nodeV4(1)]; n.State != "Established" || n.RouterID != "10.255.255.1" {
		t.Errorf("session %s with router ID %s, want it kept Established with 10.255.255.1", n.State, n.RouterID)
	}
}

// TestFRRDynamicASN: a peer without a peer AS (dynamicASN external) takes
// the router's AS from its OPEN. With a router of another AS the session
// comes up, reports that AS, and the route arrives. With a router of the
// node's own AS it is refused: shut down with a NOTIFICATION as soon as
// it opens, saying why, no route left at the router, and tried again
// after RefuseRetry (3s in the helper), refused again.
func TestFRRDynamicASN(t *testing.T) {
	seg := newSegment(t, 2)
	r := startFRR(t, seg.rtr, frrConf(rtrV4,
		nodeV4(1)+fmt.Sprintf(" remote-as %d", nodeAS),
		nodeV4(2)+fmt.Sprintf(" remote-as %d", routerAS)))
	dynamic := func(myAS uint32, node int) Peer {
		p := fastPeer("r4", rtrV4, myAS)
		p.PeerASN, p.DynamicASN = 0, true
		p.Routes = []Route{{Prefix: vip4, NextHop: addr(nodeV4(node))}}
		return p
	}
	good, bad := startSpeaker(t, seg.nodes[0]), startSpeaker(t, seg.nodes[1])
	good.reconcile(t, Desired{RouterID: addr(nodeV4(1)), Peers: []Peer{dynamic(nodeAS, 1)}})
	bad.reconcile(t, Desired{RouterID: addr(nodeV4(2)), Peers: []Peer{dynamic(routerAS, 2)}})

	st := good.waitSession(t, "r4", StateEstablished, 10*time.Second)
	if st.PeerASN != routerAS || st.LastError != "" {
		t.Errorf("dynamic external session with AS %d: %+v, want PeerASN %d and no error", routerAS, st, routerAS)
	}

	// The refused session: the speaker says why, the router got a
	// NOTIFICATION, and the route it may have held for a moment is gone.
	var refused SessionState
	if !nstest.Eventually(10*time.Second, func() bool {
		refused = bad.sessions(t)[0]
		return strings.Contains(refused.LastError, "AS 64512 is this session's myASN, but dynamicASN is external")
	}) {
		t.Fatalf("session with a router of the node's AS: %+v, want it refused", refused)
	}
	n := r.neighbor(t, nodeV4(2))
	if n.EstablishedCount < 1 || n.State == "Established" || !strings.Contains(n.LastNotification, "Administrative Shutdown") {
		t.Errorf("router's view of the refused session: state %s, established %d times, last notification %q; want down after a Cease/Administrative Shutdown",
			n.State, n.EstablishedCount, n.LastNotification)
	}
	want := []path{{From: nodeV4(1), NextHop: nodeV4(1)}}
	if !nstest.Eventually(3*time.Second, func() bool { return reflect.DeepEqual(r.paths(t, vip4.String()), want) }) {
		t.Errorf("router's paths of %s: %+v, want only the one from the external session %+v", vip4, r.paths(t, vip4.String()), want)
	}

	// Tried again after RefuseRetry, and refused again.
	first := n.EstablishedCount
	if !nstest.Eventually(10*time.Second, func() bool { return r.neighbor(t, nodeV4(2)).EstablishedCount > first }) {
		t.Fatalf("refused session not tried again within 10s (RefuseRetry 3s)")
	}
	if !nstest.Eventually(5*time.Second, func() bool {
		st := bad.sessions(t)[0]
		return st.State != StateEstablished && r.neighbor(t, nodeV4(2)).State != "Established"
	}) {
		t.Errorf("retried session not refused again: %+v", bad.sessions(t)[0])
	}
	if got := r.paths(t, vip4.String()); !reflect.DeepEqual(got, want) {
		t.Errorf("router's paths of %s after the retry: %+v, want %+v", vip4, got, want)
	}
	if st := good.sessions(t)[0]; st.State != StateEstablished {
		t.Errorf("external session: %+v, want it still up", st)
	}
}

// oneSession starts FRR and one node's speaker with an eBGP session "r4"
// between them, sending routes, and waits until both see it Established.
func oneSession(t *testing.T, routes ...Route) (*frr, *speaker) {
	t.Helper()
	seg := newSegment(t, 1)
	r := startFRR(t, seg.rtr, frrConf(rtrV4, nodeV4(1)+fmt.Sprintf(" remote-as %d", nodeAS)))
	sp := startSpeaker(t, seg.nodes[0])
	p := fastPeer("r4", rtrV4, nodeAS)
	p.Routes = routes
	sp.reconcile(t, Desired{RouterID: addr(nodeV4(1)), Peers: []Peer{p}})
	sp.waitSession(t, "r4", StateEstablished, 10*time.Second)
	r.waitEstablished(t, 5*time.Second, nodeV4(1))
	return r, sp
}

// TestFRRRestart: what a BFD failure does to its BGP session. The router
// gets a NOTIFICATION (Cease, administrative reset) carrying why, the
// speaker's session says why it went down, and the session is back
// within a few seconds: at the first attempt of either side, with no
// idle time after the reset.
func TestFRRRestart(t *testing.T) {
	r, sp := oneSession(t, Route{Prefix: vip4, NextHop: addr(nodeV4(1))})

	t0 := time.Now()
	sp.h.Do("restart " + rtrV4 + " BFD session down: control detection time expired")
	if !nstest.Eventually(3*time.Second, func() bool {
		return strings.Contains(r.neighbor(t, nodeV4(1)).LastNotification, "Administrative Reset")
	}) {
		t.Errorf("router's last notification: %q, want Cease/Administrative Reset", r.neighbor(t, nodeV4(1)).LastNotification)
	}
	if !nstest.Eventually(3*time.Second, func() bool { return sp.sessions(t)[0].State != StateEstablished }) {
		t.Fatalf("session still %+v after the reset", sp.sessions(t)[0])
	}
	st := sp.waitSession(t, "r4", StateEstablished, 6*time.Second)
	t.Logf("session back %s after the reset", time.Since(t0).Round(time.Millisecond))
	if st.LastError != "session down: BFD session down: control detection time expired" {
		t.Errorf("last error %q, want the reason given to Restart", st.LastError)
	}
	if n := r.neighbor(t, nodeV4(1)); n.EstablishedCount < 2 {
		t.Errorf("router established the session %d times, want 2", n.EstablishedCount)
	}
	if got := r.paths(t, vip4.String()); len(got) != 1 {
		t.Errorf("paths %+v after the reset, want the route again", got)
	}
}

// TestFRRReconnect: after the router closes a session, GoBGP waits 5 s in
// Idle before it connects or accepts again; Reconnect (what the speaker
// does once BFD is up again) brings it back sooner. A session that is not
// Idle is left alone.
func TestFRRReconnect(t *testing.T) {
	r, sp := oneSession(t)
	sp.h.Do("reconnect " + rtrV4) // Established: nothing happens
	if n := r.neighbor(t, nodeV4(1)); n.State != "Established" || n.EstablishedCount != 1 {
		t.Fatalf("Reconnect of an established session touched it: %+v", n)
	}

	t0 := time.Now()
	if out, err := r.try("clear bgp " + nodeV4(1)); err != nil {
		t.Fatalf("clear bgp: %v: %s", err, out)
	}
	sp.waitSession(t, "r4", StateIdle, 3*time.Second)
	sp.h.Do("reconnect " + rtrV4)
	sp.waitSession(t, "r4", StateEstablished, 10*time.Second)
	took := time.Since(t0)
	t.Logf("session back %s after the router closed it", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("session back after %s; GoBGP's 5 s idle time was not cut short", took)
	}
}

// TestFRRGracefulRestart: at the shutdown the session with graceful
// restart is left open, and the process's exit closes it without a
// NOTIFICATION: FRR keeps its routes (stale) and the route in the
// router's kernel never changes, through a new speaker sending them again
// (fresh); a route the new speaker no longer has goes with its
// End-of-RIB. The session without graceful restart gets its NOTIFICATION and
// its route goes at once, as before. With CloseAll (the node is leaving)
// the graceful-restart session gets a NOTIFICATION too and its route goes.
func TestFRRGracefulRestart(t *testing.T) {
	seg := newSegment(t, 1)
	r := startFRR(t, seg.rtr, frrConf(rtrV4, nodeV4(1)+" remote-as 64513", nodeV6(1)+" remote-as 64513"))
	gr := fastPeer("gr", rtrV4, nodeAS)
	gr.GracefulRestart = true
	gr.Routes = []Route{{Prefix: vip4, NextHop: addr(nodeV4(1))}, {Prefix: agg4, NextHop: addr(nodeV4(1))}}
	plain := fastPeer("plain", rtrV6, nodeAS)
	plain.Routes = []Route{{Prefix: vip6, NextHop: addr(nodeV6(1))}}
	desired := Desired{RouterID: addr(nodeV4(1)), Peers: []Peer{gr, plain}}
	wantKernel := func(prefix netip.Prefix, d time.Duration, want ...string) {
		t.Helper()
		var got []string
		if !nstest.Eventually(d, func() bool { got = kernelNextHops(t, seg.rtr, prefix.String()); return cmp.Equal(got, want) }) {
			t.Fatalf("router's kernel route for %s via %v, want %v", prefix, got, want)
		}
	}
	start := func() *speaker {
		sp := startSpeaker(t, seg.nodes[0])
		sp.reconcile(t, desired)
		r.waitEstablished(t, 10*time.Second, nodeV4(1), nodeV6(1))
		wantKernel(vip4, 10*time.Second, nodeV4(1))
		wantKernel(vip6, 10*time.Second, nodeV6(1))
		return sp
	}
	sp := start()
	wantKernel(agg4, 10*time.Second, nodeV4(1))
	if n := r.neighbor(t, nodeV4(1)); n.Capabilities.GracefulRestart != "advertisedAndReceived" {
		t.Fatalf("graceful restart capability %q, want advertised and received", n.Capabilities.GracefulRestart)
	}
	// Every change of vip4's kernel route from here to the end.
	mon := seg.rtr.Start(t, "ip", "-ts", "monitor", "route")
	time.Sleep(100 * time.Millisecond) // subscribed

	took := sp.stop(t)
	t.Logf("shutdown took %s", took)
	if n := r.neighbor(t, nodeV6(1)); n.State == "Established" || !strings.Contains(n.LastReset, "Notification received") {
		t.Errorf("session without graceful restart after the shutdown: %s, last reset %q; want a NOTIFICATION received", n.State, n.LastReset)
	}
	wantKernel(vip6, time.Second)
	if n := r.neighbor(t, nodeV4(1)); n.State != "Established" {
		t.Errorf("session with graceful restart is %s after the shutdown, want it left open until the exit", n.State)
	}

	sp.exit()
	var n frrNeighbor
	if !nstest.Eventually(5*time.Second, func() bool { n = r.neighbor(t, nodeV4(1)); return n.State != "Established" }) {
		t.Fatalf("session with graceful restart still %s after the exit", n.State)
	}
	if strings.Contains(n.LastReset, "Notification") {
		t.Errorf("session with graceful restart: last reset %q, want the connection closed without a NOTIFICATION", n.LastReset)
	}
	if got, want := r.paths(t, vip4.String()), []path{{From: nodeV4(1), NextHop: nodeV4(1), Stale: true}}; !cmp.Equal(got, want) {
		t.Errorf("FRR's paths for %s after the exit:\n%s", vip4, cmp.Diff(want, got))
	}
	time.Sleep(time.Second) // without graceful restart it would be gone within 100 ms
	wantKernel(vip4, 0, nodeV4(1))

	// The new speaker no longer announces agg4 (its Service went while
	// it was down): its End-of-RIB tells the router to drop the stale
	// path.
	desired.Peers[0].Routes = desired.Peers[0].Routes[:1]
	sp = start()
	var got []path
	if !nstest.Eventually(5*time.Second, func() bool {
		got = r.paths(t, vip4.String())
		return cmp.Equal(got, []path{{From: nodeV4(1), NextHop: nodeV4(1)}})
	}) {
		t.Errorf("FRR's paths for %s after the new speaker: %+v, want one fresh path", vip4, got)
	}
	wantKernel(agg4, 5*time.Second)
	mon.Kill()
	for _, line := range strings.Split(mon.Output(), "\n") {
		if strings.Contains(line, vip4.Addr().String()) {
			t.Errorf("the kernel route of %s changed during the restart: %s", vip4, line)
		}
	}

	t.Run("node leaving: every session gets a NOTIFICATION", func(t *testing.T) {
		sp.h.Do("close-all")
		sp.stop(t)
		n := r.neighbor(t, nodeV4(1))
		if n.State == "Established" || !strings.Contains(n.LastReset, "Notification received") {
			t.Errorf("session with graceful restart: %s, last reset %q; want a NOTIFICATION received", n.State, n.LastReset)
		}
		wantKernel(vip4, time.Second)
	})
}
