// Package backend is the lab's stand-in for kube-proxy on one node: for
// every EXTERNAL-IP of a LoadBalancer Service it puts the IP on the node's
// lo and serves a tiny HTTP backend on IP:port for each TCP port, answering
// with the node's name. A client that gets "n2" back knows the network
// delivered its packets to node n2, which is what the suite checks.
//
// With externalTrafficPolicy: Local a node serves only when it has a ready
// endpoint of the Service (EndpointSlices with its nodeName), as kube-proxy
// would drop the traffic otherwise.
//
// A Service annotated lab.herald.dev/no-backend: "true" gets nothing: no
// IP on lo, no listener (and, from the lab's EndpointSlice writer, no
// endpoints). Benchmarks use it for thousands of filler Services that
// Herald must allocate and announce but nobody needs to reach.
//
// Desired is pure; Proxy reconciles lo and the listeners to it, whole set
// each pass.
package backend

import (
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// AnnotationNoBackend on a Service, set to "true", tells the lab's
// stand-ins to give it no backend: no IP on lo, no listener, no endpoints.
const AnnotationNoBackend = "lab.herald.dev/no-backend"

// NoBackend reports whether svc asks for no backend (AnnotationNoBackend).
func NoBackend(svc *corev1.Service) bool {
	return strings.EqualFold(strings.TrimSpace(svc.Annotations[AnnotationNoBackend]), "true")
}

// Desired returns the backends node must serve: each IP:port with the
// Service ("namespace/name") it belongs to.
func Desired(node string, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) map[netip.AddrPort]string {
	local := map[string]bool{} // namespace/service with a ready endpoint on node
	for _, s := range slices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		for _, e := range s.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			if ready && e.NodeName != nil && *e.NodeName == node {
				local[s.Namespace+"/"+name] = true
			}
		}
	}
	out := map[netip.AddrPort]string{}
	for _, svc := range svcs {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.DeletionTimestamp != nil || NoBackend(svc) {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && !local[key] {
			continue
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(ing.IP)
			if err != nil {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					continue
				}
				out[netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))] = key
			}
		}
	}
	return out
}

// IPs returns the distinct addresses of backends, sorted.
func IPs(backends map[netip.AddrPort]string) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for ap := range backends {
		if !seen[ap.Addr()] {
			seen[ap.Addr()] = true
			out = append(out, ap.Addr())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
