package speaker

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// slimService keeps only what the speaker reads of a Service, so 10,000
// Services cost little memory in the cache.
func slimService(obj any) (any, error) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil
	}
	return &corev1.Service{
		TypeMeta:   s.TypeMeta,
		ObjectMeta: slimMeta(s.ObjectMeta, false),
		Spec: corev1.ServiceSpec{
			Type:                  s.Spec.Type,
			LoadBalancerClass:     s.Spec.LoadBalancerClass,
			ExternalTrafficPolicy: s.Spec.ExternalTrafficPolicy,
		},
		Status: corev1.ServiceStatus{LoadBalancer: s.Status.LoadBalancer},
	}, nil
}

// slimEndpointSlice keeps the Service name and, per endpoint, its node and
// readiness.
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
		out.Endpoints[i] = discoveryv1.Endpoint{NodeName: ep.NodeName, Conditions: discoveryv1.EndpointConditions{Ready: ep.Conditions.Ready}}
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
