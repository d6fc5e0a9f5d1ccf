package kube_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
)

// slimService is what the Service informer's transform stores: another
// type than corev1.Service.
type slimService struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	ClusterIP string
}

func (s *slimService) DeepCopyObject() runtime.Object {
	out := *s
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

func toSlimService(obj any) (any, error) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("transform got %T, want *v1.Service (an object transformed twice?)", obj)
	}
	return &slimService{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Labels: s.Labels, ResourceVersion: s.ResourceVersion},
		ClusterIP:  s.Spec.ClusterIP,
	}, nil
}

// markNode is an idempotent transform: it marks the Node and drops its
// status.
func markNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil, fmt.Errorf("transform got %T, want *v1.Node", obj)
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations["test/transformed"] = "yes"
	n.Status = corev1.NodeStatus{}
	return n, nil
}

// handlerLog records the events a handler receives, as "add name" etc.
type handlerLog struct {
	mu     sync.Mutex
	events []string
}

func (h *handlerLog) add(what string, obj any) {
	name := "?"
	if o, ok := obj.(metav1.Object); ok {
		name = o.GetName()
	} else if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		name = "tombstone " + t.Key
	}
	h.mu.Lock()
	h.events = append(h.events, what+" "+name)
	h.mu.Unlock()
}

func (h *handlerLog) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

func (h *handlerLog) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { h.add("add", obj) },
		UpdateFunc: func(_, obj any) { h.add("update", obj) },
		DeleteFunc: func(obj any) { h.add("delete", obj) },
	}
}

// storeKeys returns the sorted keys of an informer's store.
func storeKeys(i *kube.Informer) []string {
	keys := i.Store().ListKeys()
	slices.Sort(keys)
	return keys
}

// startCache runs c until the test ends, and checks that Run then returns
// nil.
func startCache(t *testing.T, c *kube.Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	syncCtx, stop := context.WithTimeout(t.Context(), 30*time.Second)
	defer stop()
	if !c.WaitForSync(syncCtx) {
		t.Fatal("the cache did not sync")
	}
}

// TestCache runs informers with selectors and transforms against the API
// server, in both of client-go's ways to fill an informer: list then
// watch, and watch-list (a watch that streams the initial objects and
// ends them with a bookmark).
func TestCache(t *testing.T) {
	for _, mode := range []struct {
		name      string
		watchList bool
	}{{"list-watch", false}, {"watch-list", true}} {
		t.Run(mode.name, func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, mode.watchList)
			testCache(t, mode.watchList)
		})
	}
}

func testCache(t *testing.T, watchList bool) {
	f := newFixture(t)
	ctx := t.Context()
	nsA, nsB := f.namespace(t), f.namespace(t)
	run := uniqueName("run")
	cfg := rest.CopyConfig(f.cfg)
	reqs := &requestLog{}
	cfg.Wrap(reqs.wrap)
	api, err := kube.NewClient(cfg, f.scheme)
	if err != nil {
		t.Fatal(err)
	}

	// Objects there before the cache starts: the initial list.
	f.create(t,
		newL2Status(nsA, "pre-mine", "node-1"),
		newL2Status(nsA, "pre-other-node", "node-2"),
		newL2Status(nsB, "pre-elsewhere", "node-1"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: v1beta1.LegacyConfigMapName}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "other"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: v1beta1.LegacyConfigMapName}},
		newNode(run+"-pre", map[string]string{"run": run}),
		newNode(run+"-unlabeled", nil),
		newService(nsA, "web", nil),
	)

	c := kube.NewCache(api)
	ownNode := labels.Set{v1beta1.LabelNodeName: "node-1"}
	l2, err := c.Informer(&v1beta1.ServiceL2Status{}, kube.InformerOptions{Namespace: nsA, Labels: ownNode})
	if err != nil {
		t.Fatal(err)
	}
	cms, err := c.Informer(&corev1.ConfigMap{}, kube.InformerOptions{
		Namespace: nsA, Fields: fields.OneTermEqualSelector("metadata.name", v1beta1.LegacyConfigMapName),
	})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.Informer(&corev1.Node{}, kube.InformerOptions{Labels: labels.Set{"run": run}, Transform: markNode})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Informer(&corev1.Service{}, kube.InformerOptions{Namespace: nsA, Transform: toSlimService})
	if err != nil {
		t.Fatal(err)
	}
	events := &handlerLog{}
	if err := l2.AddHandler(events.handler()); err != nil {
		t.Fatal(err)
	}
	startCache(t, c)
	if _, err := c.Informer(&corev1.Secret{}, kube.InformerOptions{}); err == nil {
		t.Error("Informer after Run: no error")
	}

	t.Run("initial objects", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			inf  *kube.Informer
			want []string
		}{
			{"namespace and labels", l2, []string{nsA + "/pre-mine"}},
			{"namespace and field", cms, []string{nsA + "/" + v1beta1.LegacyConfigMapName}},
			{"labels, cluster-scoped", nodes, []string{run + "-pre"}},
			{"namespace", svcs, []string{nsA + "/web"}},
		} {
			if diff := cmp.Diff(tc.want, storeKeys(tc.inf)); diff != "" {
				t.Errorf("%s: store keys (-want +got):\n%s", tc.name, diff)
			}
		}
	})

	t.Run("transform and managedFields", func(t *testing.T) {
		var direct corev1.Node
		if err := f.api.Get(ctx, types.NamespacedName{Name: run + "-pre"}, &direct); err != nil {
			t.Fatal(err)
		}
		if len(direct.ManagedFields) == 0 {
			t.Fatal("the API server sent no managedFields: this test cannot tell whether the cache strips them")
		}
		item, ok, err := nodes.Store().GetByKey(run + "-pre")
		if err != nil || !ok {
			t.Fatalf("store: %v, %v", ok, err)
		}
		n := item.(*corev1.Node)
		if n.ManagedFields != nil {
			t.Errorf("stored node has managedFields %v", n.ManagedFields)
		}
		if n.Annotations["test/transformed"] != "yes" {
			t.Errorf("stored node annotations %v: the transform did not run", n.Annotations)
		}
		if n.Kind != "" || n.APIVersion != "" {
			t.Errorf("stored node TypeMeta %+v, want empty", n.TypeMeta)
		}
		s, ok, err := svcs.Store().GetByKey(nsA + "/web")
		if err != nil || !ok {
			t.Fatalf("service store: %v, %v", ok, err)
		}
		if slim, ok := s.(*slimService); !ok || slim.ClusterIP == "" {
			t.Errorf("stored service %#v, want a *slimService with a cluster IP", s)
		}
	})

	t.Run("Get", func(t *testing.T) {
		var n corev1.Node
		if err := c.Get(ctx, types.NamespacedName{Name: run + "-pre"}, &n); err != nil {
			t.Fatal(err)
		}
		if n.Name != run+"-pre" || n.Annotations["test/transformed"] != "yes" {
			t.Fatalf("Get: %s %v", n.Name, n.Annotations)
		}
		// Get copies: changing what it returned leaves the cache alone.
		n.Labels["changed"] = "yes"
		var again corev1.Node
		if err := c.Get(ctx, types.NamespacedName{Name: run + "-pre"}, &again); err != nil {
			t.Fatal(err)
		}
		if _, ok := again.Labels["changed"]; ok {
			t.Error("changing the object Get returned changed the cache")
		}

		for _, key := range []types.NamespacedName{
			{Namespace: nsA, Name: "missing"},
			{Namespace: nsA, Name: "pre-other-node"}, // there, not selected
			{Namespace: nsB, Name: "pre-elsewhere"},  // there, not selected
		} {
			err := c.Get(ctx, key, &v1beta1.ServiceL2Status{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("Get %s: %v, want NotFound", key, err)
				continue
			}
			var status apierrors.APIStatus
			if errors.As(err, &status) {
				d := status.Status().Details
				if d == nil || d.Group != "herald.dev" || d.Kind != "servicel2statuses" || d.Name != key.Name {
					t.Errorf("Get %s: NotFound details %+v", key, d)
				}
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts []kube.ListOption
			want []string
		}{
			{"everything", nil, []string{"pre-mine"}},
			{"namespace", []kube.ListOption{kube.InNamespace(nsA)}, []string{"pre-mine"}},
			{"namespace not watched", []kube.ListOption{kube.InNamespace(nsB)}, []string{}},
			{"labels", []kube.ListOption{kube.MatchingLabels(ownNode)}, []string{"pre-mine"}},
			{"labels not matching", []kube.ListOption{kube.InNamespace(nsA), kube.MatchingLabels(map[string]string{v1beta1.LabelNodeName: "node-2"})}, []string{}},
		} {
			var l v1beta1.ServiceL2StatusList
			if err := c.List(ctx, &l, tc.opts...); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if diff := cmp.Diff(tc.want, names[v1beta1.ServiceL2Status](l.Items)); diff != "" {
				t.Errorf("%s: names (-want +got):\n%s", tc.name, diff)
			}
		}
		// Items are not deep copies: they share the cache's maps.
		var l v1beta1.ServiceL2StatusList
		if err := c.List(ctx, &l); err != nil {
			t.Fatal(err)
		}
		stored, _, _ := l2.Store().GetByKey(nsA + "/pre-mine")
		if len(l.Items) != 1 || stored == nil ||
			reflect.ValueOf(l.Items[0].Labels).UnsafePointer() != reflect.ValueOf(stored.(*v1beta1.ServiceL2Status).Labels).UnsafePointer() {
			t.Error("List's item does not share the cached object's labels: it was deep-copied")
		}
		var nl corev1.NodeList
		if err := c.List(ctx, &nl); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{run + "-pre"}, names[corev1.Node](nl.Items)); diff != "" {
			t.Errorf("nodes (-want +got):\n%s", diff)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			err     error
			is      error
			mention string
		}{
			{"Get undeclared", c.Get(ctx, types.NamespacedName{Namespace: nsA, Name: "x"}, &corev1.Secret{}), kube.ErrNoInformer, "Secret"},
			{"List undeclared", c.List(ctx, &discoveryv1.EndpointSliceList{}), kube.ErrNoInformer, "EndpointSlice"},
			{"Get unsupported", c.Get(ctx, types.NamespacedName{Namespace: nsA, Name: "x"}, &corev1.Pod{}), kube.ErrUnsupportedKind, "*v1.Pod"},
			{"Get transformed type", c.Get(ctx, types.NamespacedName{Namespace: nsA, Name: "web"}, &corev1.Service{}), nil, "slimService"},
			{"List transformed type", c.List(ctx, &corev1.ServiceList{}), nil, "slimService"},
		} {
			if tc.err == nil {
				t.Errorf("%s: no error", tc.name)
				continue
			}
			if tc.is != nil && !errors.Is(tc.err, tc.is) {
				t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.is)
			}
			if !strings.Contains(tc.err.Error(), tc.mention) {
				t.Errorf("%s: %q does not mention %q", tc.name, tc.err, tc.mention)
			}
		}
	})

	t.Run("watch", func(t *testing.T) {
		// Not selected, created first: its events would come before
		// those of the selected object.
		f.create(t, newL2Status(nsA, "live-other-node", "node-2"), newL2Status(nsB, "live-elsewhere", "node-1"))
		live := newL2Status(nsA, "live", "node-1")
		if err := api.Create(ctx, live); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the cache sees the new object", func() error {
			var got v1beta1.ServiceL2Status
			return c.Get(ctx, types.NamespacedName{Namespace: nsA, Name: "live"}, &got)
		})
		if err := api.MergePatchStatus(ctx, live, []byte(`{"status":{"node":"node-1"}}`)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the cache sees the status", func() error {
			var got v1beta1.ServiceL2Status
			if err := c.Get(ctx, types.NamespacedName{Namespace: nsA, Name: "live"}, &got); err != nil {
				return err
			}
			if got.Status.Node != "node-1" {
				return fmt.Errorf("status %+v", got.Status)
			}
			return nil
		})
		if err := api.Delete(ctx, live); err != nil {
			t.Fatal(err)
		}
		want := []string{"add pre-mine", "add live", "update live", "delete live"}
		eventually(t, "handler events", func() error {
			if diff := cmp.Diff(want, events.get()); diff != "" {
				return fmt.Errorf("(-want +got):\n%s", diff)
			}
			return nil
		})
		if diff := cmp.Diff([]string{nsA + "/pre-mine"}, storeKeys(l2)); diff != "" {
			t.Errorf("store after the delete (-want +got):\n%s", diff)
		}

		// A new Node with the label arrives transformed.
		f.create(t, newNode(run+"-live", map[string]string{"run": run}))
		eventually(t, "the new node", func() error {
			var n corev1.Node
			if err := c.Get(ctx, types.NamespacedName{Name: run + "-live"}, &n); err != nil {
				return err
			}
			if n.ManagedFields != nil || n.Annotations["test/transformed"] != "yes" {
				return fmt.Errorf("managedFields %d, annotations %v", len(n.ManagedFields), n.Annotations)
			}
			return nil
		})
	})

	t.Run("requests", func(t *testing.T) {
		// What the informers asked the API server: their selectors in
		// every request, and the initial state the way the mode says:
		// a list then a watch, or one watch-list stream (which a
		// failing transform would turn into a fallback list).
		for _, tc := range []struct {
			path           string
			labels, fields string
		}{
			{"/namespaces/" + nsA + "/servicel2statuses", v1beta1.LabelNodeName + "=node-1", ""},
			{"/namespaces/" + nsA + "/configmaps", "", "metadata.name=" + v1beta1.LegacyConfigMapName},
			{"/api/v1/nodes", "run=" + run, ""},
			{"/namespaces/" + nsA + "/services", "", ""},
		} {
			var lists, watches, streams int
			for _, r := range reqs.to(tc.path) {
				if r.method != "GET" {
					continue
				}
				if got := r.query.Get("labelSelector"); got != tc.labels {
					t.Errorf("%s: labelSelector %q, want %q", r, got, tc.labels)
				}
				if got := r.query.Get("fieldSelector"); got != tc.fields {
					t.Errorf("%s: fieldSelector %q, want %q", r, got, tc.fields)
				}
				switch {
				case r.query.Get("watch") != "true":
					lists++
				case r.query.Get("sendInitialEvents") == "true":
					streams++
					if r.query.Get("allowWatchBookmarks") != "true" || r.query.Get("resourceVersionMatch") != "NotOlderThan" {
						t.Errorf("watch-list request without bookmarks or resourceVersionMatch: %s", r)
					}
				default:
					watches++
					if r.query.Get("allowWatchBookmarks") != "true" {
						t.Errorf("watch without bookmarks: %s", r)
					}
				}
			}
			t.Logf("%s: %d lists, %d watches, %d watch-list streams", tc.path, lists, watches, streams)
			if watchList {
				if streams == 0 || lists != 0 {
					t.Errorf("%s, watch-list mode: %d streams and %d lists, want the initial state streamed", tc.path, streams, lists)
				}
			} else if lists == 0 || watches == 0 || streams != 0 {
				t.Errorf("%s, list-watch mode: %d lists, %d watches, %d streams", tc.path, lists, watches, streams)
			}
		}
	})
}

func TestCacheLifecycle(t *testing.T) {
	f := newFixture(t)
	c := kube.NewCache(f.api)
	if _, err := c.Informer(&corev1.Node{}, kube.InformerOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		obj  kube.Object
		opts kube.InformerOptions
	}{
		{"declared twice", &corev1.Node{}, kube.InformerOptions{}},
		{"namespace for a cluster-scoped kind", &corev1.Node{}, kube.InformerOptions{Namespace: "x"}},
		{"invalid label", &corev1.Service{}, kube.InformerOptions{Labels: labels.Set{"bad key!": "x"}}},
		{"kind outside the table", &corev1.Pod{}, kube.InformerOptions{}},
	} {
		if _, err := c.Informer(tc.obj, tc.opts); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}

	// Not running: never synced.
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if c.WaitForSync(short) {
		t.Error("WaitForSync before Run: true")
	}

	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	syncCtx, cancelSync := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancelSync()
	if !c.WaitForSync(syncCtx) {
		t.Fatal("no sync")
	}
	if err := c.Run(ctx); err == nil {
		t.Error("second Run: no error")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned before its context ended: %v", err)
	default:
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v, want nil after the context ended", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}

	// A cache without informers runs until its context ends, and is
	// synced.
	empty := kube.NewCache(f.api)
	if !empty.WaitForSync(t.Context()) {
		t.Error("empty cache: WaitForSync false")
	}
	ctx2, stop2 := context.WithCancel(t.Context())
	done2 := make(chan error, 1)
	go func() { done2 <- empty.Run(ctx2) }()
	select {
	case err := <-done2:
		t.Fatalf("empty cache: Run returned at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	stop2()
	if err := <-done2; err != nil {
		t.Errorf("empty cache: Run: %v", err)
	}
}
