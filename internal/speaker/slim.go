package speaker

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/servicereq"
)

// cachedService is what a speaker keeps of a Service in its informer
// cache: its name, UID and resource version (for events) and the Service
// as the loops read it, computed once when it arrives. A whole
// corev1.Service costs about 1.3 KB in the cache even with every field
// the speaker does not read dropped (its structs are large); this is a
// third of that, 10,000 Services 9 MB less.
type cachedService struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// Svc is announcedService's view; Announced says it has addresses
	// and Herald serves it.
	Svc       Service
	Announced bool
}

var _ kube.Object = (*cachedService)(nil)

// DeepCopyObject copies c.
func (c *cachedService) DeepCopyObject() runtime.Object {
	out := *c
	c.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Svc.IPs = slices.Clone(c.Svc.IPs)
	return &out
}

// serviceTransform returns the cache transform that turns Services into
// cachedServices for the given class.
func serviceTransform(class servicereq.Class) func(any) (any, error) {
	return func(obj any) (any, error) {
		s, ok := obj.(*corev1.Service)
		if !ok {
			return obj, nil
		}
		svc, announced := announcedService(class, s)
		return &cachedService{
			TypeMeta: metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{
				Name: s.Name, Namespace: s.Namespace, UID: s.UID,
				ResourceVersion: s.ResourceVersion, DeletionTimestamp: s.DeletionTimestamp,
			},
			Svc:       svc,
			Announced: announced,
		}, nil
	}
}

// slimEndpointSlice keeps the Service name and, per endpoint, its node and
// conditions (ready, serving, terminating).
func slimEndpointSlice(obj any) (any, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj, nil
	}
	out := &discoveryv1.EndpointSlice{
		TypeMeta:    es.TypeMeta,
		ObjectMeta:  slimMeta(es.ObjectMeta, true),
		AddressType: es.AddressType,
		Endpoints:   make([]discoveryv1.Endpoint, len(es.Endpoints)),
	}
	for i, ep := range es.Endpoints {
		out.Endpoints[i] = discoveryv1.Endpoint{NodeName: ep.NodeName, Conditions: discoveryv1.EndpointConditions{
			Ready: ep.Conditions.Ready, Serving: ep.Conditions.Serving, Terminating: ep.Conditions.Terminating}}
	}
	return out, nil
}

func slimMeta(m metav1.ObjectMeta, keepLabels bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID,
		ResourceVersion: m.ResourceVersion, Generation: m.Generation,
		DeletionTimestamp: m.DeletionTimestamp,
	}
	if keepLabels {
		out.Labels = m.Labels
	}
	return out
}
