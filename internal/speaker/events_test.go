package speaker

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/servicereq"
)

// cached is s as the Service informer's cache holds it.
func cached(t *testing.T, s *corev1.Service) *cachedService {
	t.Helper()
	obj, err := serviceTransform(servicereq.Class{})(s)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*cachedService)
}

// slimSlice is an EndpointSlice of service as the slice informer's cache
// holds it: one endpoint per node, ready as given.
func slimSlice(t *testing.T, service, rv string, ready map[string]bool) *discoveryv1.EndpointSlice {
	t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: service + "-x", ResourceVersion: rv, Labels: map[string]string{v1beta1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, node := range []string{"n1", "n2", "n3"} {
		if r, ok := ready[node]; ok {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{"10.0.0.1"}, NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(r)},
			})
		}
	}
	obj, err := slimEndpointSlice(es)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*discoveryv1.EndpointSlice)
}

func TestPassFilter(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	announced := cached(t, lbService("web", "172.31.255.200"))
	pending := cached(t, lbService("new"))
	for _, s := range []*cachedService{announced, pending} {
		if err := store.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	f := passFilter{services: store}

	withAnnotation := lbService("web", "172.31.255.200")
	withAnnotation.Annotations = map[string]string{"herald.dev/address-pool": "l2"}
	withAnnotation.Spec.Ports = []corev1.ServicePort{{Port: 80}}
	local := lbService("web", "172.31.255.200")
	local.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	pendingPorts := lbService("new")
	pendingPorts.Spec.Ports = []corev1.ServicePort{{Port: 443}}
	clusterIP := lbService("web", "172.31.255.200")
	clusterIP.Spec.Type = corev1.ServiceTypeClusterIP

	node := readyNode("n1")
	// Configuration objects: the controller's status writes leave the
	// generation as it is; a spec change moves it.
	pool := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 1, ResourceVersion: "1"},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"172.31.255.200/29"}}}
	poolStatus := pool.DeepCopy()
	poolStatus.ResourceVersion, poolStatus.Status.AssignedIPv4 = "2", 1
	poolSpec := pool.DeepCopy()
	poolSpec.ResourceVersion, poolSpec.Generation, poolSpec.Spec.Addresses = "2", 2, []string{"172.31.255.208/29"}
	poolLabels := pool.DeepCopy()
	poolLabels.ResourceVersion, poolLabels.Labels = "2", map[string]string{"zone": "a"}
	poolDeleting := pool.DeepCopy()
	poolDeleting.ResourceVersion, poolDeleting.DeletionTimestamp = "2", &metav1.Time{}
	peer := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 3, ResourceVersion: "1"}}
	peerStatus := peer.DeepCopy()
	peerStatus.ResourceVersion = "2"
	peerStatus.Status.Conditions = []metav1.Condition{{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue}}
	peerAnnotated := peer.DeepCopy()
	peerAnnotated.ResourceVersion, peerAnnotated.Annotations = "2", map[string]string{"note": "x"}
	for _, tc := range []struct {
		name     string
		old, obj any
		want     bool
	}{
		{"Service still without address", pending, cached(t, pendingPorts), false},
		{"Service gets its address", pending, cached(t, lbService("new", "172.31.255.201")), true},
		{"announced Service, annotation and port", announced, cached(t, withAnnotation), false},
		{"announced Service, another address", announced, cached(t, lbService("web", "172.31.255.202")), true},
		{"announced Service, a second address", announced, cached(t, lbService("web", "172.31.255.200", "fd00:31::200")), true},
		{"announced Service, policy Local", announced, cached(t, local), true},
		{"announced Service loses its address", announced, cached(t, lbService("web")), true},
		{"announced Service no longer a LoadBalancer", announced, cached(t, clusterIP), true},
		{"slice of an announced Service, new version only",
			slimSlice(t, "web", "1", map[string]bool{"n1": true}), slimSlice(t, "web", "2", map[string]bool{"n1": true}), false},
		{"slice of an announced Service, endpoint not ready",
			slimSlice(t, "web", "1", map[string]bool{"n1": true}), slimSlice(t, "web", "2", map[string]bool{"n1": false}), true},
		{"slice of an announced Service, endpoint on another node",
			slimSlice(t, "web", "1", map[string]bool{"n1": true}), slimSlice(t, "web", "2", map[string]bool{"n2": true}), true},
		{"slice of an announced Service, endpoint added",
			slimSlice(t, "web", "1", map[string]bool{"n1": true}), slimSlice(t, "web", "2", map[string]bool{"n1": true, "n3": true}), true},
		{"slice of a Service without address, endpoint not ready",
			slimSlice(t, "new", "1", map[string]bool{"n1": true}), slimSlice(t, "new", "2", map[string]bool{"n1": false}), false},
		{"slice of a Service not in the cache",
			slimSlice(t, "other", "1", map[string]bool{"n1": true}), slimSlice(t, "other", "2", map[string]bool{"n1": false}), false},
		{"slice moved to an announced Service",
			slimSlice(t, "new", "1", map[string]bool{"n1": true}), slimSlice(t, "web", "2", map[string]bool{"n1": true}), true},
		{"slice moved away from an announced Service",
			slimSlice(t, "web", "1", map[string]bool{"n1": true}), slimSlice(t, "new", "2", map[string]bool{"n1": true}), true},
		{"Node, any update", node, readyNode("n1"), true},
		{"pool, status only", pool, poolStatus, false},
		{"pool, spec", pool, poolSpec, true},
		{"pool, labels", pool, poolLabels, true},
		{"pool, being deleted", pool, poolDeleting, true},
		{"peer, status only", peer, peerStatus, false},
		{"peer, annotation", peer, peerAnnotated, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.changed(tc.old, tc.obj); got != tc.want {
				t.Errorf("changed = %v, want %v", got, tc.want)
			}
		})
	}

	noLabel := slimSlice(t, "web", "1", map[string]bool{"n1": true})
	noLabel.Labels = nil
	for _, tc := range []struct {
		name string
		obj  any
		want bool
	}{
		{"announced Service", announced, true},
		{"Service without address", pending, false},
		{"slice of an announced Service", slimSlice(t, "web", "1", nil), true},
		{"slice of a Service without address", slimSlice(t, "new", "1", nil), false},
		{"slice of a Service not in the cache", slimSlice(t, "other", "1", nil), false},
		{"slice without Service label", noLabel, true},
		{"tombstone", toolscache.DeletedFinalStateUnknown{Key: "default/new", Obj: pending}, true},
		{"Node", node, true},
	} {
		t.Run("add/delete "+tc.name, func(t *testing.T) {
			if got := f.matters(tc.obj); got != tc.want {
				t.Errorf("matters = %v, want %v", got, tc.want)
			}
		})
	}

	// Without a store every slice event counts.
	if !(passFilter{}).changed(slimSlice(t, "new", "1", map[string]bool{"n1": true}), slimSlice(t, "new", "2", map[string]bool{"n1": false})) {
		t.Error("without a Service store a slice change must make a pass")
	}
}

// TestPassFilterHandler: the wrapped handler sees exactly the events the
// filter lets through.
func TestPassFilterHandler(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	announced := cached(t, lbService("web", "172.31.255.200"))
	pending := cached(t, lbService("new"))
	_ = store.Add(announced)
	var adds, updates, deletes int
	h := passFilter{services: store}.handler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { adds++ },
		UpdateFunc: func(any, any) { updates++ },
		DeleteFunc: func(any) { deletes++ },
	})
	h.OnAdd(pending, false)
	h.OnAdd(announced, true)
	h.OnUpdate(pending, pending)
	h.OnUpdate(pending, announced)
	h.OnDelete(pending)
	h.OnDelete(announced)
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "default/new", Obj: pending})
	if adds != 1 || updates != 1 || deletes != 2 {
		t.Errorf("adds, updates, deletes = %d, %d, %d; want 1, 1, 2", adds, updates, deletes)
	}
}
