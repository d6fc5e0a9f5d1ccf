package speaker

import (
	"maps"
	"reflect"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
)

// passFilter drops the Service and EndpointSlice events that cannot
// change what a pass computes, so that they cost no pass. A pass reads
// only the announced Services (cachedService.Svc) and the endpoints of
// those Services (node and conditions, kept by slimEndpointSlice), so:
//
//   - a Service Herald does not announce (no address yet, another class,
//     not a LoadBalancer) is ignored until it is announced;
//   - an update that leaves the announced view as it was (an annotation,
//     a port, the controller's pool annotation after the address) is
//     ignored;
//   - an EndpointSlice of a Service that is not announced (or not in the
//     cache yet) is ignored: the Service's own event, when it gets its
//     address, makes the pass that reads the slices; so is an update that
//     changes no endpoint's node or conditions.
//
// The configuration kinds pass only when their spec (generation), labels,
// annotations or deletion mark change: the controller writes their
// status (a pool's counts with every address it assigns), which no pass
// reads. Everything else (other kinds, tombstones) goes through. Skipping is
// safe because a pass recomputes everything from the caches: the next
// pass after a relevant event sees every change, skipped ones included.
type passFilter struct {
	// services is the Service informer's store (cachedService objects);
	// nil lets every EndpointSlice event through.
	services toolscache.Store
}

// handler wraps h with the filter.
func (f passFilter) handler(h toolscache.ResourceEventHandler) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if f.matters(obj) {
				h.OnAdd(obj, initial)
			}
		},
		UpdateFunc: func(old, obj any) {
			if f.changed(old, obj) {
				h.OnUpdate(old, obj)
			}
		},
		DeleteFunc: func(obj any) {
			if f.matters(obj) {
				h.OnDelete(obj)
			}
		},
	}
}

// matters reports whether obj, added or deleted, can change a pass.
func (f passFilter) matters(obj any) bool {
	switch o := obj.(type) {
	case *cachedService:
		return o.Announced
	case *discoveryv1.EndpointSlice:
		return f.serviceAnnounced(o)
	}
	return true // other kinds, tombstones
}

// changed reports whether the update from old to obj can change a pass.
func (f passFilter) changed(old, obj any) bool {
	switch n := obj.(type) {
	case *cachedService:
		o, ok := old.(*cachedService)
		if !ok {
			return true
		}
		if !o.Announced && !n.Announced {
			return false
		}
		return o.Announced != n.Announced || !reflect.DeepEqual(o.Svc, n.Svc)
	case *discoveryv1.EndpointSlice:
		o, ok := old.(*discoveryv1.EndpointSlice)
		if !ok {
			return true
		}
		sameService := o.Namespace == n.Namespace && o.Labels[v1beta1.LabelServiceName] == n.Labels[v1beta1.LabelServiceName]
		if sameService && o.AddressType == n.AddressType && maps.Equal(o.Labels, n.Labels) &&
			reflect.DeepEqual(o.Endpoints, n.Endpoints) {
			return false
		}
		return f.serviceAnnounced(n) || (!sameService && f.serviceAnnounced(o))
	case *v1beta1.IPAddressPool, *v1beta1.L2Advertisement, *v1beta1.BGPAdvertisement, *v1beta1.BGPPeer,
		*v1beta1.Community, *v1beta1.BFDProfile:
		return specChanged(old, obj)
	}
	return true
}

// specChanged reports whether a configuration object changed in what a
// pass reads: its spec (the generation counts spec changes), labels,
// annotations or deletion mark; not its status.
func specChanged(old, obj any) bool {
	o, ok1 := old.(metav1.Object)
	n, ok2 := obj.(metav1.Object)
	if !ok1 || !ok2 {
		return true
	}
	return o.GetGeneration() != n.GetGeneration() || !maps.Equal(o.GetLabels(), n.GetLabels()) ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) || !o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
}

// serviceAnnounced reports whether the Service of es is in the cache and
// announced; true when that cannot be told.
func (f passFilter) serviceAnnounced(es *discoveryv1.EndpointSlice) bool {
	name := es.Labels[v1beta1.LabelServiceName]
	if f.services == nil || name == "" {
		return true
	}
	obj, ok, err := f.services.GetByKey(es.Namespace + "/" + name)
	switch {
	case err != nil:
		return true
	case !ok:
		return false
	}
	if s, isCached := obj.(*cachedService); isCached {
		return s.Announced
	}
	return true
}
