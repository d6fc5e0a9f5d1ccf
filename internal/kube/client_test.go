package kube_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
)

// TestClientLifecycle creates, reads, lists and deletes one object of a
// namespaced built-in kind, a cluster-scoped one and a Herald kind, and
// checks each step against an independent client.
func TestClientLifecycle(t *testing.T) {
	f := newFixture(t)
	ns := f.namespace(t)
	for _, tc := range []struct {
		name    string
		obj     func(name string) kube.Object
		empty   func() kube.Object
		list    func() kube.ObjectList
		names   func(kube.ObjectList) []string
		listOpt []kube.ListOption
	}{{
		name:  "Service",
		obj:   func(n string) kube.Object { return newService(ns, n, nil) },
		empty: func() kube.Object { return &corev1.Service{} },
		list:  func() kube.ObjectList { return &corev1.ServiceList{} },
		names: func(l kube.ObjectList) []string {
			return names[corev1.Service](l.(*corev1.ServiceList).Items)
		},
		listOpt: []kube.ListOption{kube.InNamespace(ns)},
	}, {
		name:  "Node",
		obj:   func(n string) kube.Object { return newNode(n, map[string]string{"test": ns}) },
		empty: func() kube.Object { return &corev1.Node{} },
		list:  func() kube.ObjectList { return &corev1.NodeList{} },
		names: func(l kube.ObjectList) []string {
			return names[corev1.Node](l.(*corev1.NodeList).Items)
		},
		listOpt: []kube.ListOption{kube.MatchingLabels(map[string]string{"test": ns})},
	}, {
		name:  "ServiceL2Status",
		obj:   func(n string) kube.Object { return newL2Status(ns, n, "node-a") },
		empty: func() kube.Object { return &v1beta1.ServiceL2Status{} },
		list:  func() kube.ObjectList { return &v1beta1.ServiceL2StatusList{} },
		names: func(l kube.ObjectList) []string {
			return names[v1beta1.ServiceL2Status](l.(*v1beta1.ServiceL2StatusList).Items)
		},
		listOpt: []kube.ListOption{kube.InNamespace(ns)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			name := uniqueName(strings.ToLower(tc.name))
			obj := tc.obj(name)
			if err := f.api.Create(ctx, obj); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if obj.GetUID() == "" || obj.GetResourceVersion() == "" {
				t.Fatalf("Create did not fill the object from the answer: uid %q, resourceVersion %q", obj.GetUID(), obj.GetResourceVersion())
			}
			key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}

			// The independent client sees what Create wrote.
			check := tc.empty()
			if err := f.cr.Get(ctx, key, check.(client.Object)); err != nil {
				t.Fatalf("independent Get after Create: %v", err)
			}
			if check.GetUID() != obj.GetUID() {
				t.Fatalf("independent Get: uid %q, Create answered %q", check.GetUID(), obj.GetUID())
			}

			got := tc.empty()
			if err := f.api.Get(ctx, key, got); err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(obj, got); diff != "" {
				t.Errorf("Get differs from Create's answer (-create +get):\n%s", diff)
			}

			list := tc.list()
			if err := f.api.List(ctx, list, tc.listOpt...); err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff([]string{name}, tc.names(list)); diff != "" {
				t.Errorf("List names (-want +got):\n%s", diff)
			}

			if err := f.api.Delete(ctx, obj); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := f.cr.Get(ctx, key, tc.empty().(client.Object)); !apierrors.IsNotFound(err) {
				t.Fatalf("independent Get after Delete: %v, want NotFound", err)
			}
			if err := f.api.Get(ctx, key, tc.empty()); !apierrors.IsNotFound(err) {
				t.Fatalf("Get after Delete: %v, want NotFound", err)
			}
			if err := f.api.Delete(ctx, obj); !apierrors.IsNotFound(err) {
				t.Fatalf("second Delete: %v, want NotFound", err)
			}
		})
	}
}

func TestClientListFilters(t *testing.T) {
	f := newFixture(t)
	nsA, nsB := f.namespace(t), f.namespace(t)
	f.create(t,
		newService(nsA, "a-web", map[string]string{"role": "web"}),
		newService(nsA, "a-db", map[string]string{"role": "db"}),
		newService(nsB, "b-web", map[string]string{"role": "web", "tier": "front"}),
		newL2Status(nsA, "a-one", "node-1"),
		newL2Status(nsA, "a-two", "node-2"),
		newL2Status(nsB, "b-one", "node-1"),
	)
	for _, tc := range []struct {
		name string
		list kube.ObjectList
		opts []kube.ListOption
		want []string
	}{
		{"services in A", &corev1.ServiceList{}, []kube.ListOption{kube.InNamespace(nsA)}, []string{"a-db", "a-web"}},
		{"services in B", &corev1.ServiceList{}, []kube.ListOption{kube.InNamespace(nsB)}, []string{"b-web"}},
		{"web services in A", &corev1.ServiceList{}, []kube.ListOption{kube.InNamespace(nsA), kube.MatchingLabels(map[string]string{"role": "web"})}, []string{"a-web"}},
		{"every label must match", &corev1.ServiceList{}, []kube.ListOption{kube.InNamespace(nsB), kube.MatchingLabels(map[string]string{"role": "web", "tier": "back"})}, []string{}},
		{"empty namespace", &corev1.ServiceList{}, []kube.ListOption{kube.InNamespace(uniqueName("none"))}, []string{}},
		{"l2 status of node-1 in A", &v1beta1.ServiceL2StatusList{}, []kube.ListOption{kube.InNamespace(nsA), kube.MatchingLabels(map[string]string{v1beta1.LabelNodeName: "node-1"})}, []string{"a-one"}},
		{"l2 status in B", &v1beta1.ServiceL2StatusList{}, []kube.ListOption{kube.InNamespace(nsB)}, []string{"b-one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.api.List(t.Context(), tc.list, tc.opts...); err != nil {
				t.Fatal(err)
			}
			var got []string
			switch l := tc.list.(type) {
			case *corev1.ServiceList:
				got = names[corev1.Service](l.Items)
			case *v1beta1.ServiceL2StatusList:
				got = names[v1beta1.ServiceL2Status](l.Items)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}

	// Without a namespace, a List spans namespaces.
	t.Run("node-1 everywhere", func(t *testing.T) {
		var l v1beta1.ServiceL2StatusList
		if err := f.api.List(t.Context(), &l, kube.MatchingLabels(map[string]string{v1beta1.LabelNodeName: "node-1"})); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range l.Items {
			if s.Namespace == nsA || s.Namespace == nsB {
				got = append(got, s.Namespace+"/"+s.Name)
			}
			// The API server sends kind and apiVersion on custom
			// resources' items; the client clears them like the rest.
			if s.Kind != "" || s.APIVersion != "" {
				t.Errorf("item %s/%s has TypeMeta %+v, want it empty", s.Namespace, s.Name, s.TypeMeta)
			}
		}
		slices.Sort(got)
		want := []string{nsA + "/a-one", nsB + "/b-one"}
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
	})
}

func TestClientMergePatchStatus(t *testing.T) {
	f := newFixture(t)
	ns := f.namespace(t)
	ctx := t.Context()

	t.Run("ServiceL2Status", func(t *testing.T) {
		st := newL2Status(ns, "patched", "node-1")
		f.create(t, st)
		obj := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "patched"}}
		// The label change is ignored: only the status subresource is written.
		patch := []byte(`{"metadata":{"labels":{"sneaky":"yes"}},"status":{"node":"node-1","serviceName":"web","ips":["192.0.2.1","2001:db8::1"]}}`)
		if err := f.api.MergePatchStatus(ctx, obj, patch); err != nil {
			t.Fatalf("MergePatchStatus: %v", err)
		}
		want := v1beta1.ServiceL2StatusStatus{Node: "node-1", ServiceName: "web", IPs: []string{"192.0.2.1", "2001:db8::1"}}
		if diff := cmp.Diff(want, obj.Status); diff != "" {
			t.Errorf("answer's status (-want +got):\n%s", diff)
		}
		var check v1beta1.ServiceL2Status
		if err := f.cr.Get(ctx, client.ObjectKeyFromObject(st), &check); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, check.Status); diff != "" {
			t.Errorf("stored status (-want +got):\n%s", diff)
		}
		if _, ok := check.Labels["sneaky"]; ok {
			t.Errorf("labels %v: the patch went to the object, not its status subresource", check.Labels)
		}
		// A merge patch: fields not named stay.
		if err := f.api.MergePatchStatus(ctx, obj, []byte(`{"status":{"interfaces":["eth0"]}}`)); err != nil {
			t.Fatal(err)
		}
		want.Interfaces = []string{"eth0"}
		if diff := cmp.Diff(want, obj.Status); diff != "" {
			t.Errorf("status after the second patch (-want +got):\n%s", diff)
		}
	})

	t.Run("Service", func(t *testing.T) {
		svc := newService(ns, "lb", nil)
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		f.create(t, svc)
		obj := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lb"}}
		if err := f.api.MergePatchStatus(ctx, obj, []byte(`{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}`)); err != nil {
			t.Fatalf("MergePatchStatus: %v", err)
		}
		if ing := obj.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != "192.0.2.10" {
			t.Errorf("ingress %+v, want one with IP 192.0.2.10", ing)
		}
		if len(obj.Spec.Ports) != 1 {
			t.Errorf("the answer did not fill the object: ports %v", obj.Spec.Ports)
		}
	})

	t.Run("missing object", func(t *testing.T) {
		obj := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"}}
		if err := f.api.MergePatchStatus(ctx, obj, []byte(`{"status":{"node":"x"}}`)); !apierrors.IsNotFound(err) {
			t.Fatalf("MergePatchStatus of a missing object: %v, want NotFound", err)
		}
	})
}

func TestClientDeleteAllOf(t *testing.T) {
	f := newFixture(t)
	nsA, nsB := f.namespace(t), f.namespace(t)
	f.create(t,
		newL2Status(nsA, "one", "node-1"),
		newL2Status(nsA, "two", "node-1"),
		newL2Status(nsA, "three", "node-2"),
		newL2Status(nsB, "one", "node-1"),
		newService(nsA, "svc", map[string]string{v1beta1.LabelNodeName: "node-1"}),
	)
	ctx := t.Context()
	if err := f.api.DeleteAllOf(ctx, &v1beta1.ServiceL2Status{},
		kube.InNamespace(nsA), kube.MatchingLabels(map[string]string{v1beta1.LabelNodeName: "node-1"})); err != nil {
		t.Fatalf("DeleteAllOf: %v", err)
	}
	for _, tc := range []struct {
		ns   string
		want []string
	}{{nsA, []string{"three"}}, {nsB, []string{"one"}}} {
		var l v1beta1.ServiceL2StatusList
		if err := f.cr.List(ctx, &l, client.InNamespace(tc.ns)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, names[v1beta1.ServiceL2Status](l.Items)); diff != "" {
			t.Errorf("ServiceL2Status left in %s (-want +got):\n%s", tc.ns, diff)
		}
	}
	// Other kinds with the same label are not touched.
	if err := f.cr.Get(ctx, types.NamespacedName{Namespace: nsA, Name: "svc"}, &corev1.Service{}); err != nil {
		t.Errorf("the Service with the same label: %v", err)
	}
	// A namespaced kind needs a namespace: no request deletes everywhere.
	if err := f.api.DeleteAllOf(ctx, &v1beta1.ServiceL2Status{}, kube.MatchingLabels(map[string]string{v1beta1.LabelNodeName: "node-1"})); err == nil {
		t.Error("DeleteAllOf without a namespace: no error")
	}
	var l v1beta1.ServiceL2StatusList
	if err := f.cr.List(ctx, &l, client.InNamespace(nsB)); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 {
		t.Errorf("DeleteAllOf without a namespace deleted objects: %d left in %s, want 1", len(l.Items), nsB)
	}
}

// notInScheme is an Object of a type no scheme knows.
type notInScheme struct {
	metav1.TypeMeta
	metav1.ObjectMeta
}

func (n *notInScheme) DeepCopyObject() runtime.Object {
	out := *n
	n.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

type notInSchemeList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []notInScheme
}

func (n *notInSchemeList) DeepCopyObject() runtime.Object { out := *n; return &out }

func TestClientErrors(t *testing.T) {
	f := newFixture(t)
	ns := f.namespace(t)
	f.create(t, newService(ns, "exists", nil))
	ctx := t.Context()
	key := types.NamespacedName{Namespace: ns, Name: "exists"}

	for _, tc := range []struct {
		name string
		call func() error
		// is is the check the error must pass; mention, a part of its message.
		is      func(error) bool
		mention string
	}{
		{"Get missing", func() error {
			return f.api.Get(ctx, types.NamespacedName{Namespace: ns, Name: "missing"}, &corev1.Service{})
		}, apierrors.IsNotFound, `"missing" not found`},
		{"Get missing node", func() error { return f.api.Get(ctx, types.NamespacedName{Name: uniqueName("missing")}, &corev1.Node{}) }, apierrors.IsNotFound, "nodes"},
		{"Create existing", func() error { return f.api.Create(ctx, newService(ns, "exists", nil)) }, apierrors.IsAlreadyExists, "already exists"},
		{"Create invalid", func() error {
			return f.api.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-ports"}})
		}, apierrors.IsInvalid, "ports"},
		{"Get kind outside the table", func() error { return f.api.Get(ctx, key, &corev1.Pod{}) }, isUnsupported, "*v1.Pod"},
		{"List kind outside the table", func() error { return f.api.List(ctx, &corev1.PodList{}, kube.InNamespace(ns)) }, isUnsupported, "*v1.PodList"},
		{"Get type outside the scheme", func() error { return f.api.Get(ctx, key, &notInScheme{}) }, isUnsupported, "*kube_test.notInScheme"},
		{"List type outside the scheme", func() error { return f.api.List(ctx, &notInSchemeList{}) }, isUnsupported, "*kube_test.notInSchemeList"},
		{"Create type outside the scheme", func() error {
			return f.api.Create(ctx, &notInScheme{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}})
		}, isUnsupported, "notInScheme"},
		{"Get without namespace", func() error { return f.api.Get(ctx, types.NamespacedName{Name: "exists"}, &corev1.Service{}) }, isAnyError, "namespace required"},
		{"Create without namespace", func() error { return f.api.Create(ctx, newService("", "x", nil)) }, isAnyError, "namespace required"},
		{"invalid label", func() error {
			return f.api.List(ctx, &corev1.ServiceList{}, kube.MatchingLabels(map[string]string{"bad key!": "x"}))
		}, isAnyError, "label selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !tc.is(err) {
				t.Fatalf("error %v (%T) does not pass the check", err, err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func isUnsupported(err error) bool { return errors.Is(err, kube.ErrUnsupportedKind) }
func isAnyError(err error) bool    { return err != nil }
