// Package endpoints writes the EndpointSlices of the lab's LoadBalancer
// Services, standing in for kube-controller-manager (the lab has none, and no
// Pods): by default every node has a ready endpoint (its InternalIP), or
// only the nodes named in the Service's annotation
// lab.herald.dev/endpoint-nodes, so that externalTrafficPolicy: Local can be
// exercised. Services annotated lab.herald.dev/no-backend: "true"
// (backend.AnnotationNoBackend) get no slice.
//
// Desired is pure: Services and Nodes in, slices out. Run keeps the API
// server's managed slices equal to it (whole set each pass, plus a resync).
// Only slices labelled endpointslice.kubernetes.io/managed-by=lab.herald.dev
// are touched.
package endpoints

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/e2e/lab/backend"
)

const (
	// AnnotationEndpointNodes on a Service lists the nodes (comma
	// separated) that have its endpoints; empty means none. Without it,
	// every node has one.
	AnnotationEndpointNodes = "lab.herald.dev/endpoint-nodes"
	// ManagedBy is the managed-by label value of the slices written here.
	ManagedBy = "lab.herald.dev"
)

// SliceName is the name of a Service's slice for one address type.
func SliceName(svc string, t discoveryv1.AddressType) string {
	if len(svc) > 50 {
		svc = svc[:50]
	}
	return svc + "-lab-" + strings.ToLower(string(t))
}

// EndpointNodes returns the nodes that should have endpoints of svc,
// among nodes (sorted names).
func EndpointNodes(svc *corev1.Service, nodes []string) []string {
	v, ok := svc.Annotations[AnnotationEndpointNodes]
	if !ok {
		return nodes
	}
	want := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []string
	for _, n := range nodes {
		if want[n] {
			out = append(out, n)
		}
	}
	return out
}

// Desired returns the slices the LoadBalancer Services should have: one per
// address type of the Service's families, with an endpoint per chosen node
// that has an InternalIP of that family. Sorted by namespace and name.
func Desired(svcs []*corev1.Service, nodes []*corev1.Node) []*discoveryv1.EndpointSlice {
	addrs := map[string]map[discoveryv1.AddressType]string{}
	var names []string
	for _, n := range nodes {
		m := map[discoveryv1.AddressType]string{}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			t := discoveryv1.AddressTypeIPv4
			if strings.Contains(a.Address, ":") {
				t = discoveryv1.AddressTypeIPv6
			}
			if _, ok := m[t]; !ok {
				m[t] = a.Address
			}
		}
		addrs[n.Name] = m
		names = append(names, n.Name)
	}
	sort.Strings(names)

	var out []*discoveryv1.EndpointSlice
	for _, svc := range svcs {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.DeletionTimestamp != nil || backend.NoBackend(svc) {
			continue
		}
		chosen := EndpointNodes(svc, names)
		var ports []discoveryv1.EndpointPort
		for _, p := range svc.Spec.Ports {
			port := p.Port
			if p.TargetPort.IntValue() > 0 {
				port = int32(p.TargetPort.IntValue())
			}
			ports = append(ports, discoveryv1.EndpointPort{
				Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(port),
			})
		}
		for _, fam := range families(svc) {
			t := discoveryv1.AddressType(fam)
			slice := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: svc.Namespace,
					Name:      SliceName(svc.Name, t),
					Labels: map[string]string{
						discoveryv1.LabelServiceName: svc.Name,
						discoveryv1.LabelManagedBy:   ManagedBy,
					},
				},
				AddressType: t,
				Ports:       ports,
				Endpoints:   []discoveryv1.Endpoint{},
			}
			for _, n := range chosen {
				a, ok := addrs[n][t]
				if !ok {
					continue
				}
				slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
					Addresses: []string{a},
					NodeName:  ptr.To(n),
					Conditions: discoveryv1.EndpointConditions{
						Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false),
					},
				})
			}
			out = append(out, slice)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// families are the Service's IP families: spec.ipFamilies, else inferred
// from its ClusterIPs, else IPv4.
func families(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies
	}
	var fams []corev1.IPFamily
	for _, ip := range svc.Spec.ClusterIPs {
		if strings.Contains(ip, ":") {
			fams = append(fams, corev1.IPv6Protocol)
		} else if ip != "" && ip != corev1.ClusterIPNone {
			fams = append(fams, corev1.IPv4Protocol)
		}
	}
	if len(fams) == 0 {
		fams = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	return fams
}
