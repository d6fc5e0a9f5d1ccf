package speaker

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/announce/bfd"
	"github.com/herald-lb/herald/internal/announce/bgp"
	fsm "github.com/herald-lb/herald/internal/bfd"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/model"
)

// fakeBGP is the BGP adapter as a recorder, and a source of session
// states the test sets.
type fakeBGP struct {
	mu       sync.Mutex
	desired  []bgp.Desired
	sessions []bgp.SessionState
	changes  chan struct{}
}

func (f *fakeBGP) Reconcile(_ context.Context, d bgp.Desired) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desired = append(f.desired, d)
	return nil
}

func (f *fakeBGP) last() bgp.Desired {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.desired[len(f.desired)-1]
}

func (f *fakeBGP) Sessions() []bgp.SessionState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

func (f *fakeBGP) Changes() <-chan struct{} { return f.changes }

func (f *fakeBGP) setSessions(s ...bgp.SessionState) {
	f.mu.Lock()
	f.sessions = s
	f.mu.Unlock()
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

func bgpNode(name string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

func bgpService(name string, local bool, ips ...string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func bgpEndpoints(svc string, nodes ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: svc + "-eps", Labels: map[string]string{v1beta1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To(n),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return es
}

func heraldMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: name}
}

// bgpLoopFixture is a BGPLoop for node n1 (172.31.255.11, fd00:31::11)
// on a fake API server with a BGP pool, a BGPAdvertisement and a peer.
func bgpLoopFixture(t *testing.T, objs ...client.Object) (*BGPLoop, client.Client, *fakeBGP, *record.FakeRecorder) {
	t.Helper()
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs,
		bgpNode("n1", "172.31.255.11", "fd00:31::11"),
		&v1beta1.IPAddressPool{ObjectMeta: heraldMeta("bgp"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"172.31.250.0/24", "fd00:33::/120"}}},
		&v1beta1.BGPAdvertisement{ObjectMeta: heraldMeta("bgp"), Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"65000:1"}}},
	)
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&v1beta1.BGPSessionStatus{}, &v1beta1.ServiceBGPStatus{}).Build()
	spk := &fakeBGP{changes: make(chan struct{}, 1)}
	rec := record.NewFakeRecorder(100)
	loop := &BGPLoop{Client: k8s.Client(cl), Namespace: v1beta1.Namespace, NodeName: "n1", Speaker: spk, Log: logr.Discard()}
	return loop, cl, spk, rec
}

func routerPeer(mod ...func(*v1beta1.BGPPeerSpec)) *v1beta1.BGPPeer {
	p := &v1beta1.BGPPeer{ObjectMeta: heraldMeta("router"), Spec: v1beta1.BGPPeerSpec{MyASN: 64513, PeerASN: 64512, PeerAddress: "172.31.255.1"}}
	for _, m := range mod {
		m(&p.Spec)
	}
	return p
}

// bgpRoutes reduces a Desired to peer -> "prefix via next-hop".
func bgpRoutes(d bgp.Desired) map[string][]string {
	out := map[string][]string{}
	for _, p := range d.Peers {
		out[p.Name] = []string{}
		for _, r := range p.Routes {
			out[p.Name] = append(out[p.Name], r.Prefix.String()+" via "+r.NextHop.String())
		}
	}
	return out
}

func TestBGPLoop(t *testing.T) {
	ctx := context.Background()
	loop, cl, spk, _ := bgpLoopFixture(t, routerPeer(),
		bgpService("a", false, "172.31.250.10", "fd00:33::10"),
		bgpService("local-here", true, "172.31.250.11"), bgpEndpoints("local-here", "n1"),
		bgpService("local-there", true, "172.31.250.12"), bgpEndpoints("local-there", "n2"),
		bgpService("l2-only", false, "172.31.255.200"))
	pass := func() bgp.Desired {
		t.Helper()
		if _, err := loop.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		return spk.last()
	}

	d := pass()
	if d.RouterID != netip.MustParseAddr("172.31.255.11") {
		t.Errorf("router ID %s, want the node's IPv4 address", d.RouterID)
	}
	want := map[string][]string{"router": {
		"172.31.250.10/32 via 172.31.255.11", "172.31.250.11/32 via 172.31.255.11", "fd00:33::10/128 via fd00:31::11",
	}}
	if diff := cmp.Diff(want, bgpRoutes(d)); diff != "" {
		t.Fatalf("routes (-want +got):\n%s", diff)
	}
	p := d.Peers[0]
	if p.MyASN != 64513 || p.PeerASN != 64512 || p.Port != 179 || p.HoldTime != 90*time.Second || len(p.Routes[0].Communities) != 1 {
		t.Errorf("peer %+v: want the BGPPeer's settings with defaults, routes with the advertisement's community", p)
	}

	t.Run("endpoint gone: Local route withdrawn", func(t *testing.T) {
		if err := cl.Delete(ctx, bgpEndpoints("local-here")); err != nil {
			t.Fatal(err)
		}
		if got := bgpRoutes(pass())["router"]; slices.Contains(got, "172.31.250.11/32 via 172.31.255.11") {
			t.Errorf("routes %v still hold the Local Service without an endpoint here", got)
		}
	})
	t.Run("Service deleted: withdrawn", func(t *testing.T) {
		if err := cl.Delete(ctx, bgpService("a", false)); err != nil {
			t.Fatal(err)
		}
		if got := bgpRoutes(pass())["router"]; len(got) != 0 {
			t.Errorf("routes %v after every announced Service went", got)
		}
		if err := cl.Create(ctx, bgpService("a", false, "172.31.250.10")); err != nil {
			t.Fatal(err)
		}
		if got := bgpRoutes(pass())["router"]; len(got) != 1 {
			t.Errorf("routes %v, want the re-created Service's", got)
		}
	})
	t.Run("node excluded: withdrawn, session kept", func(t *testing.T) {
		var n corev1.Node
		if err := cl.Get(ctx, client.ObjectKey{Name: "n1"}, &n); err != nil {
			t.Fatal(err)
		}
		n.Labels[v1beta1.LabelExcludeFromLB] = ""
		if err := cl.Update(ctx, &n); err != nil {
			t.Fatal(err)
		}
		d := pass()
		if got := bgpRoutes(d); len(got) != 1 || len(got["router"]) != 0 {
			t.Errorf("routes %v, want the session with no routes", got)
		}
		delete(n.Labels, v1beta1.LabelExcludeFromLB)
		if err := cl.Update(ctx, &n); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("invalid configuration: the last good one stays", func(t *testing.T) {
		bad := routerPeer()
		bad.Name = "bad"
		bad.Spec.HoldTime = &metav1.Duration{Duration: time.Second}
		if err := cl.Create(ctx, bad); err != nil {
			t.Fatal(err)
		}
		if got := bgpRoutes(pass()); len(got) != 1 || len(got["router"]) != 1 {
			t.Errorf("routes %v, want the last good configuration's", got)
		}
	})
}

func TestBGPLoopPasswordSecret(t *testing.T) {
	ctx := context.Background()
	loop, cl, spk, _ := bgpLoopFixture(t, routerPeer(func(s *v1beta1.BGPPeerSpec) {
		s.PasswordSecret = &v1beta1.SecretReference{Name: "router-pw"}
	}))
	reg := prometheus.NewRegistry()
	status := NewBGPStatusWriter(k8s.Client(cl), nil, v1beta1.Namespace, "n1", spk, metrics.NewBGP(reg), logr.Discard())
	loop.Status = status

	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := spk.last().Peers; len(got) != 0 {
		t.Fatalf("peers %+v: a peer whose password Secret is missing must not be configured", got)
	}
	if err := status.syncSessions(ctx); err != nil {
		t.Fatal(err)
	}
	var st v1beta1.BGPSessionStatus
	if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: BGPSessionStatusName("n1", "router")}, &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Status.Message, "router-pw") {
		t.Errorf("status message %q, want the missing Secret named", st.Status.Message)
	}

	if err := cl.Create(ctx, &corev1.Secret{ObjectMeta: heraldMeta("router-pw"), Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := spk.last().Peers; len(got) != 1 || got[0].Password != "s3cret" {
		t.Fatalf("peers %+v, want the password from the Secret", got)
	}
}

// TestBGPStatusWriter: session states become BGPSessionStatus objects,
// metrics and events on the BGPPeer; announced Services get a
// ServiceBGPStatus each; what goes away is deleted.
func TestBGPStatusWriter(t *testing.T) {
	ctx := context.Background()
	loop, cl, spk, rec := bgpLoopFixture(t, routerPeer(), bgpService("a", false, "172.31.250.10", "fd00:33::10"))
	reg := prometheus.NewRegistry()
	m := metrics.NewBGP(reg)
	status := NewBGPStatusWriter(k8s.Client(cl), rec, v1beta1.Namespace, "n1", spk, m, logr.Discard())
	status.BFD = bfdStates{{Peer: "router", Address: netip.MustParseAddr("172.31.255.1"), State: fsm.StateUp},
		{Peer: "router", Address: netip.MustParseAddr("172.31.255.99"), State: fsm.StateDown}} // another address: not this session's
	loop.Status = status
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	spk.setSessions(bgp.SessionState{Peer: "router", Address: netip.MustParseAddr("172.31.255.1"), State: bgp.StateEstablished,
		Since: since, PeerASN: 64512, PrefixesSent: 2, UpdatesSent: 5})
	for _, sync := range []func(context.Context) error{status.syncSessions, status.syncServices} {
		if err := sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var sess v1beta1.BGPSessionStatus
	if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: BGPSessionStatusName("n1", "router")}, &sess); err != nil {
		t.Fatal(err)
	}
	wantSess := v1beta1.BGPSessionStatusStatus{Node: "n1", Peer: "router", PeerAddress: "172.31.255.1", State: "Established", PeerASN: 64512, BFDState: "Up",
		LastTransitionTime: metav1.NewTime(since.Truncate(time.Second)), AdvertisedPrefixes: 2}
	if d := cmp.Diff(wantSess, sess.Status); d != "" {
		t.Errorf("BGPSessionStatus (-want +got):\n%s", d)
	}
	if sess.Labels[v1beta1.LabelNodeName] != "n1" {
		t.Errorf("labels %v, want the node label", sess.Labels)
	}
	var svcs v1beta1.ServiceBGPStatusList
	if err := cl.List(ctx, &svcs); err != nil {
		t.Fatal(err)
	}
	if len(svcs.Items) != 1 {
		t.Fatalf("%d ServiceBGPStatus, want 1", len(svcs.Items))
	}
	wantSvc := v1beta1.ServiceBGPStatusStatus{Node: "n1", ServiceName: "a", ServiceNamespace: "default",
		Prefixes: []string{"172.31.250.10/32", "fd00:33::10/128"}, Peers: []string{"router"}}
	if d := cmp.Diff(wantSvc, svcs.Items[0].Status); d != "" {
		t.Errorf("ServiceBGPStatus (-want +got):\n%s", d)
	}
	if up := testutil.ToFloat64(m.SessionUp.WithLabelValues("router")); up != 1 {
		t.Errorf("session_up %v, want 1", up)
	}
	if up := testutil.ToFloat64(m.BFDSessionUp.WithLabelValues("router")); up != 1 {
		t.Errorf("bfd session_up %v, want 1", up)
	}
	if n := testutil.ToFloat64(m.AnnouncedPrefixes.WithLabelValues("router")); n != 2 {
		t.Errorf("announced_prefixes %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.UpdatesSent.WithLabelValues("router")); n != 5 {
		t.Errorf("updates_sent_total %v, want 5", n)
	}
	if ev := drainBGPEvents(rec); len(ev) != 1 || !strings.Contains(ev[0], ReasonBGPSessionEstablished) {
		t.Errorf("events %q, want one %s", ev, ReasonBGPSessionEstablished)
	}

	// The session drops: status, metric, a Warning event.
	spk.setSessions(bgp.SessionState{Peer: "router", Address: netip.MustParseAddr("172.31.255.1"), State: bgp.StateActive,
		Since: since.Add(time.Minute), UpdatesSent: 5, LastError: "session down: hold-timer-expired"})
	if err := status.syncSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: BGPSessionStatusName("n1", "router")}, &sess); err != nil {
		t.Fatal(err)
	}
	if sess.Status.State != "Active" || sess.Status.Message != "session down: hold-timer-expired" || sess.Status.AdvertisedPrefixes != 0 || sess.Status.PeerASN != 0 {
		t.Errorf("after the drop: %+v", sess.Status)
	}
	if up := testutil.ToFloat64(m.SessionUp.WithLabelValues("router")); up != 0 {
		t.Errorf("session_up %v, want 0", up)
	}
	if ev := drainBGPEvents(rec); len(ev) != 1 || !strings.Contains(ev[0], "Warning "+ReasonBGPSessionDown) || !strings.Contains(ev[0], "hold-timer-expired") {
		t.Errorf("events %q, want one Warning %s with the reason", ev, ReasonBGPSessionDown)
	}

	// The Service and the peer go: their objects go.
	if err := cl.Delete(ctx, bgpService("a", false)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx, routerPeer()); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sync := range []func(context.Context) error{status.syncSessions, status.syncServices} {
		if err := sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var sl v1beta1.BGPSessionStatusList
	if err := cl.List(ctx, &sl); err != nil {
		t.Fatal(err)
	}
	if err := cl.List(ctx, &svcs); err != nil {
		t.Fatal(err)
	}
	if len(sl.Items) != 0 || len(svcs.Items) != 0 {
		t.Errorf("%d BGPSessionStatus and %d ServiceBGPStatus left, want none", len(sl.Items), len(svcs.Items))
	}
	if n := testutil.CollectAndCount(m.SessionUp); n != 0 {
		t.Errorf("%d session_up series left for removed peers", n)
	}
}

func drainBGPEvents(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// Prestart opens the sessions before the Services are read: the peers,
// no routes; not those with graceful restart (their End-of-RIB would
// withdraw this node's routes at the router); nothing once a full pass
// ran.
func TestBGPLoopPrestart(t *testing.T) {
	ctx := context.Background()
	gr := routerPeer(func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "172.31.255.2"; s.EnableGracefulRestart = true })
	gr.Name = "gr"
	loop, _, spk, _ := bgpLoopFixture(t, routerPeer(), gr, bgpService("a", false, "172.31.250.10"))
	if err := loop.Prestart(ctx); err != nil {
		t.Fatal(err)
	}
	if len(spk.desired) != 1 {
		t.Fatalf("Prestart made %d speaker calls, want 1", len(spk.desired))
	}
	d := spk.last()
	if diff := cmp.Diff(map[string][]string{"router": {}}, bgpRoutes(d)); diff != "" {
		t.Errorf("Prestart's sessions (-want +got):\n%s", diff)
	}
	if d.RouterID != netip.MustParseAddr("172.31.255.11") {
		t.Errorf("router ID %s, want the node's IPv4 address", d.RouterID)
	}

	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := bgpRoutes(spk.last()); len(got["router"]) != 1 || len(got["gr"]) != 1 {
		t.Errorf("the full pass: %v, want both peers with the Service's route", got)
	}
	calls := len(spk.desired)
	if err := loop.Prestart(ctx); err != nil {
		t.Fatal(err)
	}
	if len(spk.desired) != calls {
		t.Error("Prestart after the first full pass called the speaker")
	}
}

// TestBGPStatusLoopCoalesces: route-only changes (later) are written once
// per delay however many come; kicks and session changes are written at
// once, and a session change once more after delay.
func TestBGPStatusLoopCoalesces(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kicks, changes, later := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{}, 1)
	var mu sync.Mutex
	syncs := 0
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return syncs
	}
	w := &BGPStatusWriter{Log: logr.Discard()}
	const delay = 100 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.loop(ctx, kicks, changes, later, delay, func(context.Context) error {
			mu.Lock()
			syncs++
			mu.Unlock()
			return nil
		}, "test")
	}()
	waitFor := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for count() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d syncs, want %d", what, count(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(3 * delay) // nothing more comes
		if got := count(); got != want {
			t.Fatalf("%s: %d syncs, want %d", what, got, want)
		}
	}

	for range 20 {
		notifyChan(later)
		time.Sleep(time.Millisecond)
	}
	waitFor(1, "twenty route changes")

	notifyChan(kicks)
	waitFor(2, "a kick")

	notifyChan(later)
	notifyChan(kicks) // covers the pending refresh
	waitFor(3, "a kick after a route change")

	notifyChan(changes)
	waitFor(5, "a session change (at once, then once more)")
	cancel()
	<-done
}

// laggingCache lists, besides what the API server has, objects deleted
// since (as a cache that has not seen the deletes yet).
type laggingCache struct {
	kube.Client
	sessions []v1beta1.BGPSessionStatus
	services []v1beta1.ServiceBGPStatus
	l2       []v1beta1.ServiceL2Status
}

func (c laggingCache) List(ctx context.Context, list kube.ObjectList, opts ...kube.ListOption) error {
	if err := c.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	switch l := list.(type) {
	case *v1beta1.BGPSessionStatusList:
		l.Items = append(l.Items, c.sessions...)
	case *v1beta1.ServiceBGPStatusList:
		l.Items = append(l.Items, c.services...)
	case *v1beta1.ServiceL2StatusList:
		l.Items = append(l.Items, c.l2...)
	}
	return nil
}

// TestBGPStatusWriterRecreatesDeleted: a status object the cache still
// lists but the API server no longer has (deleted by the previous
// process, the cache behind) is created again at once.
func TestBGPStatusWriterRecreatesDeleted(t *testing.T) {
	ctx := context.Background()
	loop, cl, spk, rec := bgpLoopFixture(t, routerPeer(), bgpService("a", false, "172.31.250.10"))
	gone := metav1.ObjectMeta{Namespace: v1beta1.Namespace, Labels: map[string]string{v1beta1.LabelNodeName: "n1"}}
	sessGone, svcGone := gone, gone
	sessGone.Name = BGPSessionStatusName("n1", "router")
	svcGone.Name = L2StatusName("n1", model.ServiceKey{Namespace: "default", Name: "a"})
	c := laggingCache{Client: k8s.Client(cl),
		sessions: []v1beta1.BGPSessionStatus{{ObjectMeta: sessGone, Status: v1beta1.BGPSessionStatusStatus{State: "Idle"}}},
		services: []v1beta1.ServiceBGPStatus{{ObjectMeta: svcGone}},
	}
	status := NewBGPStatusWriter(c, rec, v1beta1.Namespace, "n1", spk, nil, logr.Discard())
	loop.Status = status
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	spk.setSessions(bgp.SessionState{Peer: "router", Address: netip.MustParseAddr("172.31.255.1"), State: bgp.StateEstablished, PrefixesSent: 1})
	for _, sync := range []func(context.Context) error{status.syncSessions, status.syncServices} {
		if err := sync(ctx); err != nil {
			t.Fatalf("sync with a lagging cache: %v", err)
		}
	}
	var sess v1beta1.BGPSessionStatus
	if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: BGPSessionStatusName("n1", "router")}, &sess); err != nil {
		t.Fatal(err)
	}
	if sess.Status.State != "Established" || sess.Status.AdvertisedPrefixes != 1 || sess.Labels[v1beta1.LabelNodeName] != "n1" {
		t.Errorf("BGPSessionStatus created again as %+v, labels %v", sess.Status, sess.Labels)
	}
	var svc v1beta1.ServiceBGPStatus
	if err := cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: svcGone.Name}, &svc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svc.Status.Prefixes, []string{"172.31.250.10/32"}) || svc.Labels[v1beta1.LabelServiceNameRef] != "a" {
		t.Errorf("ServiceBGPStatus created again as %+v, labels %v", svc.Status, svc.Labels)
	}
}

// bfdStates is a fixed set of BFD session states.
type bfdStates []bfd.SessionState

func (b bfdStates) States() []bfd.SessionState { return b }

// TestBatchWait: an event waits only while passes run back to back.
func TestBatchWait(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		now  time.Time
		took time.Duration
		want time.Duration
	}{
		{"right after a 10ms pass", end, 10 * time.Millisecond, 40 * time.Millisecond},
		{"15ms after it", end.Add(15 * time.Millisecond), 10 * time.Millisecond, 25 * time.Millisecond},
		{"40ms after it", end.Add(40 * time.Millisecond), 10 * time.Millisecond, 0},
		{"long after it", end.Add(time.Second), 10 * time.Millisecond, 0},
		{"after a pass that took nothing", end, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := batchWait(tc.now, end, tc.took, 4); got != tc.want {
				t.Errorf("batchWait = %v, want %v", got, tc.want)
			}
		})
	}
	if d := (&BGPLoop{}).BatchDelay(); d != 0 {
		t.Errorf("before any pass BatchDelay = %v, want 0", d)
	}
}

// seqBGP and seqBFD write their calls to one list, in order.
type seqBGP struct {
	fakeBGP
	seq *[]string
}

func (s *seqBGP) Reconcile(ctx context.Context, d bgp.Desired) error {
	var names []string
	for _, p := range d.Peers {
		names = append(names, p.Name)
	}
	*s.seq = append(*s.seq, "bgp "+strings.Join(names, ","))
	return s.fakeBGP.Reconcile(ctx, d)
}

type seqBFD struct {
	fakeBFD
	seq *[]string
}

func (s *seqBFD) Reconcile(peers []bfd.Peer) error {
	var names []string
	for _, p := range peers {
		names = append(names, p.Name)
	}
	*s.seq = append(*s.seq, "bfd "+strings.Join(names, ","))
	return nil
}

// TestBGPLoopBFDAfterPeers: a BFD session starts only once its BGP peer
// is configured (FRR dials the moment BFD is up), in Prestart (which
// leaves graceful-restart peers to the first pass) and in a pass.
func TestBGPLoopBFDAfterPeers(t *testing.T) {
	ctx := context.Background()
	withBFD := func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" }
	gr := routerPeer(withBFD, func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "172.31.255.2"; s.EnableGracefulRestart = true })
	gr.Name = "gr"
	prof := &v1beta1.BFDProfile{ObjectMeta: heraldMeta("fast")}
	loop, _, _, _ := bgpLoopFixture(t, routerPeer(withBFD), gr, prof, bgpService("a", false, "172.31.250.10"))
	var seq []string
	loop.Speaker = &seqBGP{seq: &seq}
	loop.BFD = &seqBFD{seq: &seq}
	if err := loop.Prestart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"bgp router", "bfd router", "bgp gr,router", "bfd gr,router"}
	if diff := cmp.Diff(want, seq); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// TestBGPStatusWriterKeepsObjectsBeforeFirstPass: a sync that comes
// before the first pass told the writer its peers (a session change
// already queued at a restart) leaves the last run's objects alone.
func TestBGPStatusWriterKeepsObjectsBeforeFirstPass(t *testing.T) {
	ctx := context.Background()
	_, cl, spk, rec := bgpLoopFixture(t, routerPeer())
	old := &v1beta1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: BGPSessionStatusName("n1", "router"),
		Labels: map[string]string{v1beta1.LabelNodeName: "n1"}}}
	if err := cl.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	status := NewBGPStatusWriter(k8s.Client(cl), rec, v1beta1.Namespace, "n1", spk, nil, logr.Discard())
	if err := status.syncSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(old), &v1beta1.BGPSessionStatus{}); err != nil {
		t.Errorf("the last run's BGPSessionStatus after a sync before the first pass: %v", err)
	}
}
