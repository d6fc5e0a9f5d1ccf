package speaker

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/model"
	"github.com/herald-lb/herald/internal/servicereq"
)

// recordingResponder remembers every Reconcile call.
type recordingResponder struct{ calls []map[string][]netip.Addr }

func (r *recordingResponder) Reconcile(desired map[string][]netip.Addr) error {
	r.calls = append(r.calls, desired)
	return nil
}

// staticInterfaces resolves the default set to eth0; the interfaces in
// down have no link.
type staticInterfaces struct {
	resolves int
	down     map[string]bool
}

func (s *staticInterfaces) LinkUp(name string) bool { return !s.down[name] }

func (s *staticInterfaces) Resolve(wanted []string) []string {
	s.resolves++
	if wanted == nil {
		return []string{"eth0"}
	}
	return wanted
}

func lbService(name string, ips ...string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func readyNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

// loopFixture is an L2Loop on a fake API server with one node, a pool
// and an L2Advertisement, memberlist off (Ready nodes are live).
func loopFixture(t *testing.T, objs ...client.Object) (*L2Loop, client.Client, *recordingResponder, *record.FakeRecorder, *staticInterfaces) {
	t.Helper()
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs,
		readyNode("n1"),
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: "l2"},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"172.31.255.200-172.31.255.250", "fd00:31::200-fd00:31::250"}, AutoAssign: ptr.To(true)}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: "l2"},
			Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}},
	)
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	arp := &recordingResponder{}
	rec := record.NewFakeRecorder(100)
	nics := &staticInterfaces{}
	return &L2Loop{
		Client: k8s.Client(cl), Recorder: rec, Namespace: v1beta1.Namespace, NodeName: "n1",
		ARP: arp, NDP: &recordingResponder{}, Interfaces: nics, Log: logr.Discard(),
	}, cl, arp, rec, nics
}

func drainEvents(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			slices.Sort(out)
			return out
		}
	}
}

// TestReconcileOnlyActsOnChange: a pass that changes nothing this node
// does touches neither the responders nor the events; a change does,
// and nodeAssigned is emitted only for addresses newly taken.
func TestReconcileOnlyActsOnChange(t *testing.T) {
	ctx := context.Background()
	loop, cl, arp, rec, nics := loopFixture(t, lbService("a", "172.31.255.200"), lbService("b", "172.31.255.201"))

	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(arp.calls) != 1 {
		t.Fatalf("first pass: %d ARP reconciles, want 1", len(arp.calls))
	}
	want := map[string][]netip.Addr{"eth0": {netip.MustParseAddr("172.31.255.200"), netip.MustParseAddr("172.31.255.201")}}
	if d := cmp.Diff(want, arp.calls[0], cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("ARP desired (-want +got):\n%s", d)
	}
	if got := drainEvents(rec); len(got) != 2 || !strings.Contains(got[0], "nodeAssigned") {
		t.Errorf("first pass events: %q, want nodeAssigned for both Services", got)
	}
	if nics.resolves != 1 {
		t.Errorf("interfaces resolved %d times for one spec, want 1", nics.resolves)
	}

	// Nothing changed: no responder call, no event.
	for range 3 {
		if _, err := loop.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(arp.calls) != 1 {
		t.Errorf("idle passes reconciled the ARP responder again (%d calls)", len(arp.calls))
	}
	if got := drainEvents(rec); len(got) != 0 {
		t.Errorf("idle passes emitted events: %q", got)
	}

	// A new Service: one more responder call, one event, for it only.
	if err := cl.Create(ctx, lbService("c", "172.31.255.202")); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(arp.calls) != 2 || len(arp.calls[1]["eth0"]) != 3 {
		t.Errorf("after a new Service: %d ARP calls, last %v", len(arp.calls), arp.calls[len(arp.calls)-1])
	}
	if got := drainEvents(rec); len(got) != 1 || !strings.Contains(got[0], "172.31.255.202") {
		t.Errorf("events after a new Service: %q, want one for 172.31.255.202", got)
	}

	// A second Service sharing an address changes what the status says,
	// not what is announced: the pass is not skipped, and the new Service
	// (only) is told where its address is announced.
	if err := cl.Create(ctx, lbService("d", "172.31.255.202")); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(arp.calls) != 3 {
		t.Errorf("a Service sharing an owned IP did not reconcile (%d ARP calls)", len(arp.calls))
	}
	if got := drainEvents(rec); len(got) != 1 || !strings.Contains(got[0], "172.31.255.202") {
		t.Errorf("events after a Service joined an owned IP: %q, want one", got)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := drainEvents(rec); len(got) != 0 {
		t.Errorf("an idle pass emitted events: %q", got)
	}
}

// storeOf is a ServiceStore over fixed objects.
type storeOf []any

func (s storeOf) List() []any { return s }

// TestReconcileReadsServiceStore: with a ServiceStore the Services come
// from it (the informer's objects), not from a List of the client.
func TestReconcileReadsServiceStore(t *testing.T) {
	loop, _, arp, _, _ := loopFixture(t, lbService("in-client", "172.31.255.210"))
	loop.ServiceStore = storeOf{lbService("in-store", "172.31.255.220"), "not a Service"}
	if _, err := loop.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("172.31.255.220")}
	if len(arp.calls) != 1 || !slices.Equal(arp.calls[0]["eth0"], want) {
		t.Errorf("ARP desired %v, want eth0: %v", arp.calls, want)
	}
}

func TestBatchDelay(t *testing.T) {
	var l L2Loop
	for _, tc := range []struct{ pass, want time.Duration }{
		{0, minBatch},
		{time.Millisecond, minBatch},
		{25 * time.Millisecond, 250 * time.Millisecond},
		{time.Second, maxBatch},
	} {
		l.passNanos.Store(int64(tc.pass))
		if got := l.BatchDelay(); got != tc.want {
			t.Errorf("after a %s pass: BatchDelay %s, want %s", tc.pass, got, tc.want)
		}
	}
}

// TestCachedServices: the cache keeps cachedServices (serviceTransform);
// the loop announces what they say, and events reference the Service by
// kind, name and UID.
func TestCachedServices(t *testing.T) {
	class := servicereq.Class{}
	other := lbService("other-class", "172.31.255.232")
	other.Spec.LoadBalancerClass = ptr.To("someone-else")
	pending := lbService("pending")
	local := lbService("local", "172.31.255.231")
	local.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for _, s := range []*corev1.Service{lbService("a", "172.31.255.230"), local, other, pending} {
		s.UID = types.UID("uid-" + s.Name)
		s.ResourceVersion = "7"
		s.Spec.Ports = []corev1.ServicePort{{Port: 80}} // dropped
		o, err := serviceTransform(class)(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := announcedServices(context.Background(), nil, store, class)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b Service) int { return strings.Compare(a.Key.Name, b.Key.Name) })
	want := []Service{
		{Key: model.ServiceKey{Namespace: "default", Name: "a"}, IPs: []netip.Addr{netip.MustParseAddr("172.31.255.230")}},
		{Key: model.ServiceKey{Namespace: "default", Name: "local"}, IPs: []netip.Addr{netip.MustParseAddr("172.31.255.231")}, Local: true},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("announced Services from the cache (-want +got):\n%s", d)
	}

	obj := serviceForEvent(context.Background(), nil, store, model.ServiceKey{Namespace: "default", Name: "a"})
	if obj == nil {
		t.Fatal("no object for an event on a cached Service")
	}
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.GetReference(scheme, obj)
	if err != nil {
		t.Fatalf("event reference: %v", err)
	}
	if ref.Kind != "Service" || ref.APIVersion != "v1" || ref.Name != "a" || ref.Namespace != "default" || ref.UID != "uid-a" {
		t.Errorf("event reference %+v, want the Service default/a with its UID", ref)
	}
	if serviceForEvent(context.Background(), nil, store, model.ServiceKey{Namespace: "default", Name: "gone"}) != nil {
		t.Error("an event object for a Service that is not there")
	}
	cp := obj.DeepCopyObject().(*cachedService)
	cp.Svc.IPs[0] = netip.MustParseAddr("10.0.0.1")
	if obj.(*cachedService).Svc.IPs[0] == cp.Svc.IPs[0] {
		t.Error("DeepCopyObject shares the addresses")
	}
}

// TestNodeFrom: the conditions and what makes a node leave (deletion, the
// cluster autoscaler's taint; other taints do not).
func TestNodeFrom(t *testing.T) {
	now := metav1.Now()
	for _, tt := range []struct {
		name string
		node corev1.Node
		want Node
	}{
		{"ready", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue}, {Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse}}}},
			Node{Name: "n", Ready: true}},
		{"network unavailable", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}}}},
			Node{Name: "n", NetworkUnavailable: true}},
		{"autoscaler taint", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}, {Key: v1beta1.TaintToBeDeleted, Value: "1700000000", Effect: corev1.TaintEffectNoSchedule}}}},
			Node{Name: "n", Leaving: true}},
		{"other taints", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}}}},
			Node{Name: "n"}},
		{"being deleted", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", DeletionTimestamp: &now}}, Node{Name: "n", Leaving: true}},
		// Cordoned is no reason to move addresses: the node still serves.
		{"cordoned", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Unschedulable: true}},
			Node{Name: "n", Cordoned: true}},
	} {
		if got := nodeFrom(&tt.node, false); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
		if got := nodeFrom(&tt.node, false); got.Excluded() != tt.want.Leaving {
			t.Errorf("%s: Excluded %v, want %v", tt.name, got.Excluded(), tt.want.Leaving)
		}
	}

	// The exclude-from-external-load-balancers label, unless ignored
	// (--ignore-exclude-lb); a leaving node stays excluded either way.
	labelled := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp", Labels: map[string]string{labelExcludeFromLB: ""}}}
	if !nodeFrom(&labelled, false).Excluded() {
		t.Error("a node with the exclude label is not excluded")
	}
	if nodeFrom(&labelled, true).Excluded() {
		t.Error("a node with the exclude label is excluded with --ignore-exclude-lb")
	}
	labelled.DeletionTimestamp = &now
	if !nodeFrom(&labelled, true).Excluded() {
		t.Error("a leaving node is not excluded with --ignore-exclude-lb")
	}
}

// onlyEth0 has eth0 alone: other names resolve to nothing.
type onlyEth0 struct{ staticInterfaces }

func (o *onlyEth0) Resolve(wanted []string) []string {
	if wanted == nil || slices.Contains(wanted, "eth0") {
		return []string{"eth0"}
	}
	return nil
}

// An interface set that resolves to nothing on this node (an interface it
// lacks, or one deleted) counts as without link: the node could not
// answer there, so it must not take addresses over nor stay their owner.
func TestLinkUpWithoutInterface(t *testing.T) {
	c := newIfaceCache(&onlyEth0{})
	if !c.linkUp(nil) || !c.linkUp([]string{"eth0"}) {
		t.Error("eth0 is up, but its set is reported without link")
	}
	if c.linkUp([]string{"eth9"}) {
		t.Error("a set that resolves to no interface is reported up")
	}
}

// TestNoConfigurationLeavesNodeOut: a speaker that starts while the
// configuration is wrong (no good one yet) tells the others it answers for
// nothing, so they leave it out; once the configuration is fixed it is a
// candidate again.
func TestNoConfigurationLeavesNodeOut(t *testing.T) {
	ctx := context.Background()
	overlap := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: "overlap"},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"172.31.255.200/32"}}}
	loop, cl, arp, _, _ := loopFixture(t, overlap, lbService("a", "172.31.255.200"))
	m := &fakeMembership{self: "n1", live: []string{"n1"}, known: []string{"n1"}}
	loop.Membership = m
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.NoLink()["n1"]; !slices.Equal(got, []string{NoConfigSet}) {
		t.Errorf("sets without link %q without a configuration, want %q", got, NoConfigSet)
	}
	if len(arp.calls) != 0 {
		t.Errorf("answered %v without a configuration", arp.calls)
	}
	if err := cl.Delete(ctx, overlap); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.NoLink()["n1"]; len(got) != 0 {
		t.Errorf("sets without link %q with a configuration, want none", got)
	}
}

// The quorum counts live members as it counts known ones: only those
// whose Node exists and is Ready.
func TestQuorumCountsNodesOnly(t *testing.T) {
	nodes := readyNodes("n1", "n2", "n3")
	l := &L2Loop{}
	known := []string{"n1", "n2", "n3", "ghost"}
	if l.quorum(Snapshot{Nodes: nodes, Known: known, Live: []string{"n1", "ghost"}}) {
		t.Error("quorum with 1 of 3 speakers seen, a member that is no Node making up for the others")
	}
	if !l.quorum(Snapshot{Nodes: nodes, Known: known, Live: []string{"n1", "n2"}}) {
		t.Error("no quorum with 2 of 3 speakers seen")
	}
}

// A known member whose Node is gone, or not Ready, is not waited for when
// a link comes back.
func TestAllKnownLiveSkipsGoneNodes(t *testing.T) {
	m := &fakeMembership{self: "n1", live: []string{"n1", "n2"}, known: []string{"n1", "n2", "gone", "down"}}
	nodes := readyNodes("n1", "n2")
	nodes["down"] = Node{Name: "down"}
	if !allKnownLive(m, nodes) {
		t.Error("waiting for members whose Node is gone or not Ready")
	}
	if allKnownLive(m, nil) {
		t.Error("without Nodes every known member counts, and two are not live")
	}
}
