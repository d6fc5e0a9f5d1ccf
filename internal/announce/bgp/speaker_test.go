package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"

	"github.com/herald-lb/herald/internal/model"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

func TestClassOf(t *testing.T) {
	peer := netip.MustParseAddr("10.0.0.1")
	a := classOf(peer, Route{Prefix: vip4, NextHop: netip.MustParseAddr("::ffff:10.0.0.5"),
		Communities: []model.Community{c200, large, c100, c100}, LocalPref: 10})
	want := class{peer: peer, nextHop: netip.MustParseAddr("10.0.0.5"), std: "65000:100,65000:200", large: "1:2:3", localPref: 10}
	if a != want {
		t.Errorf("classOf = %+v, want %+v (sorted, deduplicated, next hop unmapped)", a, want)
	}
	if b := classOf(peer, Route{Prefix: vip6, NextHop: netip.MustParseAddr("10.0.0.5"),
		Communities: []model.Community{c100, large, c200}, LocalPref: 10}); a != b {
		t.Errorf("the same attributes in another order and prefix give another class: %+v vs %+v", a, b)
	}
}

func TestTagTable(t *testing.T) {
	p1, p2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	c := func(p netip.Addr, std string) class { return class{peer: p, std: std} }
	var tt tagTable
	if err := tt.assign(map[class]bool{c(p1, "1:1"): true, c(p2, ""): true, c(p1, ""): true}); err != nil {
		t.Fatal(err)
	}
	want := map[class]uint32{c(p1, ""): 1, c(p1, "1:1"): 2, c(p2, ""): 3}
	if d := cmp.Diff(want, tt.byClass, cmp.AllowUnexported(class{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("tags (-want +got):\n%s", d)
	}
	// A class that goes frees its tag; classes that stay keep theirs; a
	// new class takes the lowest free tag.
	tt.keep(map[class]bool{c(p1, "1:1"): true, c(p2, ""): true})
	if err := tt.assign(map[class]bool{c(p1, "1:1"): true, c(p2, ""): true, c(p2, "2:2"): true}); err != nil {
		t.Fatal(err)
	}
	want = map[class]uint32{c(p1, "1:1"): 2, c(p2, ""): 3, c(p2, "2:2"): 1}
	if d := cmp.Diff(want, tt.byClass, cmp.AllowUnexported(class{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("tags after a change (-want +got):\n%s", d)
	}
}

func TestTagTableFull(t *testing.T) {
	var tt tagTable
	cs := map[class]bool{}
	for i := range maxTag + 1 {
		cs[class{peer: netip.MustParseAddr("10.0.0.1"), localPref: uint32(i + 1)}] = true
	}
	if err := tt.assign(cs); err == nil || !strings.Contains(err.Error(), "65535") {
		t.Errorf("assign of %d classes: %v, want an error", len(cs), err)
	}
}

// TestPolicyRequest: one neighbor set per peer, a community set and a
// statement per class in tag order; each statement matches its peer and
// tag, replaces the communities (removing the tags), sets the large
// communities, local preference and next hop, and accepts.
func TestPolicyRequest(t *testing.T) {
	p4, p6 := netip.MustParseAddr("172.31.255.1"), netip.MustParseAddr("fd00:31::1")
	tt := tagTable{byClass: map[class]uint32{
		{peer: p6}: 2,
		{peer: p4, nextHop: netip.MustParseAddr("172.31.255.11"), std: "65000:100", large: "1:2:3,4:5:6", localPref: 200}: 1,
	}}
	req := tt.policyRequest()
	var sets []string
	for _, s := range req.DefinedSets {
		sets = append(sets, s.DefinedType.String()+" "+s.Name+" "+strings.Join(s.List, ","))
	}
	wantSets := []string{
		"NEIGHBOR herald-peer-172.31.255.1 172.31.255.1/32",
		"NEIGHBOR herald-peer-fd00:31::1 fd00:31::1/128",
		"COMMUNITY herald-tag-1 0:1",
		"COMMUNITY herald-tag-2 0:2",
	}
	if d := cmp.Diff(wantSets, sets); d != "" {
		t.Errorf("defined sets (-want +got):\n%s", d)
	}
	if len(req.Policies) != 2 || req.Policies[0].Name != importPolicy || req.Policies[1].Name != exportPolicy {
		t.Fatalf("policies %v, want %s and %s", req.Policies, importPolicy, exportPolicy)
	}
	if c := req.Policies[0].Statements[0].Conditions; c.RouteType != api.Conditions_ROUTE_TYPE_LOCAL {
		t.Errorf("import statement conditions %v, want local routes only", c)
	}
	st := req.Policies[1].Statements
	if len(st) != 2 {
		t.Fatalf("%d export statements, want 2", len(st))
	}
	s1, s2 := st[0], st[1]
	if s1.Conditions.NeighborSet.Name != "herald-peer-172.31.255.1" || s1.Conditions.CommunitySet.Name != "herald-tag-1" ||
		s1.Actions.RouteAction != api.RouteAction_ACCEPT || s1.Actions.Community.Type != api.CommunityAction_REPLACE ||
		!cmp.Equal(s1.Actions.Community.Communities, []string{"65000:100"}) ||
		!cmp.Equal(s1.Actions.LargeCommunity.Communities, []string{"1:2:3", "4:5:6"}) ||
		s1.Actions.LocalPref.Value != 200 || s1.Actions.Nexthop.Address != "172.31.255.11" {
		t.Errorf("statement for tag 1: %v", s1)
	}
	if s2.Conditions.NeighborSet.Name != "herald-peer-fd00:31::1" || s2.Actions.Community.Type != api.CommunityAction_REPLACE ||
		len(s2.Actions.Community.Communities) != 0 || s2.Actions.LargeCommunity != nil || s2.Actions.LocalPref != nil || !s2.Actions.Nexthop.Self {
		t.Errorf("statement for tag 2: %v (want tags removed, next hop self, nothing else)", s2)
	}
	again := tt.policyRequest()
	if !cmp.Equal(fmtProto(req), fmtProto(again)) {
		t.Error("policyRequest is not deterministic")
	}
}

func fmtProto(r *api.SetPoliciesRequest) string { return r.String() }

func TestNeighborOf(t *testing.T) {
	n := neighborOf(Peer{Address: netip.MustParseAddr("::ffff:10.0.0.1"), MyASN: 1, PeerASN: 2})
	want := neighbor{addr: netip.MustParseAddr("10.0.0.1"), port: 179, myASN: 1, peerASN: 2,
		hold: 90 * time.Second, keepalive: 30 * time.Second, connect: 10 * time.Second}
	if n != want {
		t.Errorf("defaults: %+v, want %+v", n, want)
	}
	if explicit := neighborOf(Peer{Address: netip.MustParseAddr("10.0.0.1"), Port: 179, MyASN: 1, PeerASN: 2,
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second}); explicit != n {
		t.Errorf("defaults written out are a change: %+v vs %+v", explicit, n)
	}
	for _, tc := range []struct {
		p    Peer
		want string
	}{
		{Peer{MyASN: 1, PeerASN: 2}, "not usable"},
		{Peer{Address: netip.MustParseAddr("10.0.0.1"), PeerASN: 2}, "AS numbers"},
		{Peer{Address: netip.MustParseAddr("10.0.0.1"), MyASN: 1}, "AS numbers"},
		{Peer{Address: netip.MustParseAddr("10.0.0.1"), MyASN: 1, PeerASN: 2, SourceAddress: netip.MustParseAddr("fd00::1")}, "different families"},
		{Peer{Address: netip.MustParseAddr("10.0.0.1"), MyASN: 1, PeerASN: 2, Password: strings.Repeat("x", 81)}, "80 bytes"},
	} {
		if err := neighborOf(tc.p).check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check(%+v) = %v, want %q", tc.p, err, tc.want)
		}
	}
	p := neighborOf(Peer{Address: netip.MustParseAddr("10.0.0.1"), MyASN: 64513, PeerASN: 64512, EBGPMultiHop: true,
		GracefulRestart: true, SourceAddress: netip.MustParseAddr("10.0.0.5"), Password: "pw"}).apiPeer()
	if p.Conf.LocalAsn != 64513 || p.Conf.PeerAsn != 64512 || p.Conf.AuthPassword != "pw" || p.EbgpMultihop.MultihopTtl != 255 ||
		!p.GracefulRestart.Enabled || p.Transport.LocalAddress != "10.0.0.5" || len(p.AfiSafis) != 2 || !p.AfiSafis[1].MpGracefulRestart.Config.Enabled {
		t.Errorf("apiPeer: %v", p)
	}
	dyn := neighborOf(Peer{Address: netip.MustParseAddr("10.0.0.1"), MyASN: 64513, DynamicASN: true})
	if err := dyn.check(); err != nil || dyn.apiPeer().Conf.PeerAsn != 0 || dyn.refusedASN() != 64513 {
		t.Errorf("dynamic external: check %v, peer AS %d, refused AS %d; want nil, 0 (any), 64513", err, dyn.apiPeer().Conf.PeerAsn, dyn.refusedASN())
	}
	if withAS := neighborOf(Peer{Address: netip.MustParseAddr("10.0.0.1"), MyASN: 64513, PeerASN: 64513, DynamicASN: true}); withAS.dynamic || withAS.refusedASN() != 0 {
		t.Errorf("dynamic internal (peer AS set): %+v, want a plain iBGP neighbor", withAS)
	}
}

// TestSpeakerLifecycle: Reconcile waits for Run; without peers GoBGP is
// not started; after Run ends Reconcile says ErrStopped. (No peer is
// configured: nothing leaves the machine.)
func TestSpeakerLifecycle(t *testing.T) {
	s := New(Options{Log: logr.Discard()})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Reconcile(ctx, Desired{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reconcile before Run: %v, want it to wait for Run (deadline exceeded)", err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	if err := s.Reconcile(context.Background(), Desired{}); err != nil {
		t.Fatal(err)
	}
	if s.started || s.active.Load() {
		t.Error("GoBGP started without peers")
	}
	if got := s.Sessions(); len(got) != 0 {
		t.Errorf("sessions %v, want none", got)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Reconcile(context.Background(), Desired{}); !errors.Is(err, ErrStopped) {
		t.Errorf("Reconcile after Run: %v, want ErrStopped", err)
	}
}

// TestListenIPv4WhenIPv6Fails: where the IPv6 listener cannot be opened
// (a host without IPv6; here the port is taken on IPv6), the speaker
// listens on IPv4 and serves it (GoBGP left its IPv4 listener open but
// unserved: connections hung). A connection from an unknown address is
// closed at once.
func TestListenIPv4WhenIPv6Fails(t *testing.T) {
	port := freeport.Port(t)
	hold, err := net.Listen("tcp6", fmt.Sprintf("[::]:%d", port))
	if err != nil {
		t.Skipf("no IPv6 listener to take the port with: %v", err)
	}
	defer hold.Close()
	s := New(Options{Log: logr.Discard(), ListenPort: port})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	peer := Peer{Name: "x", Address: netip.MustParseAddr("127.0.0.2"), Port: 1, MyASN: 64513, PeerASN: 64512,
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: time.Hour}
	if err := s.Reconcile(context.Background(), Desired{RouterID: netip.MustParseAddr("192.0.2.1"), Peers: []Peer{peer}}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatalf("no BGP listener on IPv4: %v", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 64)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection from an unknown address: read %v, want it closed at once (the listener served)", err)
	}
}
