package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/model"
	"github.com/herald-lb/herald/internal/servicereq"
)

func statusClient(t *testing.T, funcs interceptor.Funcs, objs ...client.Object) client.Client {
	t.Helper()
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1beta1.ServiceL2Status{}).WithObjects(objs...).Build(), funcs)
}

// statuses returns Service name -> IPs of node n1's ServiceL2Status objects.
func statuses(t *testing.T, c client.Client) map[string][]string {
	t.Helper()
	var list v1beta1.ServiceL2StatusList
	if err := c.List(context.Background(), &list, client.MatchingLabels{v1beta1.LabelNodeName: "n1"}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range list.Items {
		out[s.Status.ServiceName] = s.Status.IPs
	}
	return out
}

func entry(ips ...string) L2StatusEntry {
	e := L2StatusEntry{Interfaces: []string{"eth0"}}
	for _, ip := range ips {
		e.IPs = append(e.IPs, netip.MustParseAddr(ip))
	}
	return e
}

func TestStatusWriterSync(t *testing.T) {
	ctx := context.Background()
	stale := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace,
		Name:   L2StatusName("n1", svcKey("gone")),
		Labels: map[string]string{v1beta1.LabelNodeName: "n1"}},
		Status: v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: "gone", ServiceNamespace: "default", IPs: []string{"172.31.255.9"}}}
	var order []string
	c := statusClient(t, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			order = append(order, "create")
			return c.Create(ctx, o, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			order = append(order, "delete")
			return c.Delete(ctx, o, opts...)
		},
	}, stale)
	w := NewStatusWriter(k8s.Client(c), v1beta1.Namespace, "n1", logr.Discard())
	w.Set(map[model.ServiceKey]L2StatusEntry{svcKey("a"): entry("172.31.255.200"), svcKey("b"): entry("172.31.255.201")})
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"a": {"172.31.255.200"}, "b": {"172.31.255.201"}}
	if d := cmp.Diff(want, statuses(t, c)); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	if len(order) == 0 || order[0] != "delete" {
		t.Errorf("writes %v: the stale object must go first", order)
	}

	// A change, and an object deleted behind the writer's back.
	if err := c.Delete(ctx, &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: L2StatusName("n1", svcKey("b"))}}); err != nil {
		t.Fatal(err)
	}
	w.Set(map[model.ServiceKey]L2StatusEntry{svcKey("a"): entry("172.31.255.200", "fd00:31::200"), svcKey("b"): entry("172.31.255.201")})
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	want = map[string][]string{"a": {"172.31.255.200", "fd00:31::200"}, "b": {"172.31.255.201"}}
	if d := cmp.Diff(want, statuses(t, c)); d != "" {
		t.Errorf("statuses after a change (-want +got):\n%s", d)
	}
}

// TestStatusWriterRecreatesDeleted: a ServiceL2Status the cache still
// lists but the API server no longer has (deleted by the previous
// process, the cache behind) is created again at once.
func TestStatusWriterRecreatesDeleted(t *testing.T) {
	ctx := context.Background()
	c := statusClient(t, interceptor.Funcs{})
	gone := v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace,
		Name: L2StatusName("n1", svcKey("a")), Labels: map[string]string{v1beta1.LabelNodeName: "n1"}}}
	w := NewStatusWriter(laggingCache{Client: k8s.Client(c), l2: []v1beta1.ServiceL2Status{gone}}, v1beta1.Namespace, "n1", logr.Discard())
	w.Set(map[model.ServiceKey]L2StatusEntry{svcKey("a"): entry("172.31.255.200")})
	if err := w.sync(ctx); err != nil {
		t.Fatalf("sync with a lagging cache: %v", err)
	}
	if d := cmp.Diff(map[string][]string{"a": {"172.31.255.200"}}, statuses(t, c)); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
}

// TestStatusWriterRestartsOnNewerDesired: a long pass gives way to a
// newer desired state instead of finishing with a stale one.
func TestStatusWriterRestartsOnNewerDesired(t *testing.T) {
	ctx := context.Background()
	var w *StatusWriter
	creates := 0
	c := statusClient(t, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			creates++
			if creates == 10 {
				w.Set(map[model.ServiceKey]L2StatusEntry{svcKey("only"): entry("172.31.255.250")})
			}
			return c.Create(ctx, o, opts...)
		},
	})
	w = NewStatusWriter(k8s.Client(c), v1beta1.Namespace, "n1", logr.Discard())
	many := map[model.ServiceKey]L2StatusEntry{}
	for i := range 3 * restartEvery {
		many[svcKey(fmt.Sprintf("s%03d", i))] = entry(fmt.Sprintf("172.31.0.%d", i))
	}
	w.Set(many)
	if err := w.sync(ctx); !errors.Is(err, errNewerDesired) {
		t.Fatalf("sync = %v, want errNewerDesired", err)
	}
	if creates > 2*restartEvery {
		t.Errorf("%d creates before the pass gave way, want at most %d", creates, 2*restartEvery)
	}
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string][]string{"only": {"172.31.255.250"}}, statuses(t, c)); d != "" {
		t.Errorf("statuses after the newer desired state (-want +got):\n%s", d)
	}
}

// TestStatusWriterDeletesAllAtOnce: a speaker that owns nothing (it
// restarted) removes its many objects with one request, and only its own.
func TestStatusWriterDeletesAllAtOnce(t *testing.T) {
	ctx := context.Background()
	var objs []client.Object
	for _, node := range []string{"n1", "n2"} {
		for i := range deleteAllMin {
			key := svcKey(fmt.Sprintf("s%02d", i))
			objs = append(objs, &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace,
				Name: L2StatusName(node, key), Labels: map[string]string{v1beta1.LabelNodeName: node}}})
		}
	}
	deletes, deleteAlls := 0, 0
	c := statusClient(t, interceptor.Funcs{
		Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			deletes++
			return c.Delete(ctx, o, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteAllOfOption) error {
			deleteAlls++
			return c.DeleteAllOf(ctx, o, opts...)
		},
	}, objs...)
	w := NewStatusWriter(k8s.Client(c), v1beta1.Namespace, "n1", logr.Discard())
	w.Set(map[model.ServiceKey]L2StatusEntry{})
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if deleteAlls != 1 || deletes != 0 {
		t.Errorf("%d DeleteAllOf and %d Delete calls, want 1 and 0", deleteAlls, deletes)
	}
	if got := statuses(t, c); len(got) != 0 {
		t.Errorf("n1 still has %d objects", len(got))
	}
	var left v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &left, client.MatchingLabels{v1beta1.LabelNodeName: "n2"}); err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != deleteAllMin {
		t.Errorf("n2 has %d objects left, want %d", len(left.Items), deleteAllMin)
	}
}

// Status object names and the node label stay valid and distinct for
// every node name Kubernetes allows (up to 253 characters, with dots).
func TestStatusNames(t *testing.T) {
	long := strings.Repeat("worker-0001.rack-17.", 12) + "internal" // 248 characters
	longToo := long[:len(long)-1] + "x"
	svc := svcKey("a")
	names := map[string]string{}
	for _, tc := range []struct{ what, name string }{
		{"l2 n1", L2StatusName("n1", svc)},
		{"l2 long", L2StatusName(long, svc)},
		{"l2 long too", L2StatusName(longToo, svc)},
		{"session worker-1/gpu-tor", BGPSessionStatusName("worker-1", "gpu-tor")},
		{"session worker-1-gpu/tor", BGPSessionStatusName("worker-1-gpu", "tor")},
		{"session long", BGPSessionStatusName(long, "tor")},
		{"session long too", BGPSessionStatusName(longToo, "tor")},
	} {
		if errs := validation.IsDNS1123Subdomain(tc.name); len(errs) > 0 {
			t.Errorf("%s: %q is not a valid object name: %v", tc.what, tc.name, errs)
		}
		if other, dup := names[tc.name]; dup {
			t.Errorf("%s and %s are both named %q", other, tc.what, tc.name)
		}
		names[tc.name] = tc.what
	}
	for _, n := range []string{"n1", long, longToo, strings.Repeat("a", 63), strings.Repeat("a.", 40) + "b"} {
		v := v1beta1.NodeLabelValue(n)
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("NodeLabelValue(%q) = %q: %v", n, v, errs)
		}
		if len(n) <= 63 && v != n {
			t.Errorf("NodeLabelValue(%q) = %q, want the name itself", n, v)
		}
	}
	if v1beta1.NodeLabelValue(long) == v1beta1.NodeLabelValue(longToo) {
		t.Error("two long node names share a label value")
	}
}

// A node name longer than a label value still gives the speaker its
// informers (their selector holds the node's label value).
func TestInformersForLongNodeName(t *testing.T) {
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	api, err := kube.NewClient(&rest.Config{Host: "http://127.0.0.1:1"}, scheme)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("worker-0001.rack-17.", 5) + "internal"
	if _, err := newInformers(api, Options{Namespace: v1beta1.Namespace, NodeName: long}, servicereq.Class{}); err != nil {
		t.Errorf("informers for node %q: %v", long, err)
	}
}

// Status objects carry an owner reference to their node's Node, so the
// garbage collector deletes them with it; one written without it (before
// the Node was known, or by an older version) is written again with it.
func TestStatusOwnedByNode(t *testing.T) {
	ctx := context.Background()
	old := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace,
		Name: L2StatusName("n1", svcKey("a")), Labels: map[string]string{v1beta1.LabelNodeName: "n1"}},
		Status: v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: "a", ServiceNamespace: "default", IPs: []string{"172.31.255.200"}, Interfaces: []string{"eth0"}}}
	c := statusClient(t, interceptor.Funcs{}, old)
	w := NewStatusWriter(k8s.Client(c), v1beta1.Namespace, "n1", logr.Discard())
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "uid-n1"}}
	w.Owner = func() *metav1.OwnerReference { return NodeOwner(node) }
	w.Set(map[model.ServiceKey]L2StatusEntry{svcKey("a"): entry("172.31.255.200"), svcKey("b"): entry("172.31.255.201")})
	if err := w.sync(ctx); err != nil {
		t.Fatal(err)
	}
	var list v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d status objects, want 2", len(list.Items))
	}
	for _, o := range list.Items {
		refs := o.OwnerReferences
		if len(refs) != 1 || refs[0].Kind != "Node" || refs[0].Name != "n1" || refs[0].UID != "uid-n1" || refs[0].APIVersion != "v1" {
			t.Errorf("%s: owner references %+v, want the Node n1", o.Name, refs)
		}
		if o.Status.ServiceName == "" || len(o.Status.IPs) != 1 {
			t.Errorf("%s: status %+v", o.Name, o.Status)
		}
	}
}
