package endpoints

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/e2e/lab/backend"
)

func node(name, v4, v6 string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range []string{v4, v6} {
		if a != "" {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
		}
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	return n
}

func lbService(name string, fams []corev1.IPFamily, ann map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: ann},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, IPFamilies: fams,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
	}
}

type ep struct{ Node, Addr string }

// summary reduces slices to what the tests compare.
func summary(slices []*discoveryv1.EndpointSlice) map[string][]ep {
	out := map[string][]ep{}
	for _, s := range slices {
		k := s.Namespace + "/" + s.Name + " " + string(s.AddressType) + " svc=" + s.Labels[discoveryv1.LabelServiceName]
		out[k] = []ep{}
		for _, e := range s.Endpoints {
			out[k] = append(out[k], ep{*e.NodeName, e.Addresses[0]})
		}
	}
	return out
}

func TestDesired(t *testing.T) {
	nodes := []*corev1.Node{node("n2", "10.0.0.12", "fd00::12"), node("n1", "10.0.0.11", "fd00::11"), node("v4only", "10.0.0.13", "")}
	v4 := []corev1.IPFamily{corev1.IPv4Protocol}
	dual := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	clusterIP := lbService("cip", v4, nil)
	clusterIP.Spec.Type = corev1.ServiceTypeClusterIP
	tests := []struct {
		name string
		svcs []*corev1.Service
		want map[string][]ep
	}{
		{"every node by default", []*corev1.Service{lbService("a", v4, nil)}, map[string][]ep{
			"ns/a-lab-ipv4 IPv4 svc=a": {{"n1", "10.0.0.11"}, {"n2", "10.0.0.12"}, {"v4only", "10.0.0.13"}}}},
		{"dual stack, nodes without the family skipped", []*corev1.Service{lbService("d", dual, nil)}, map[string][]ep{
			"ns/d-lab-ipv4 IPv4 svc=d": {{"n1", "10.0.0.11"}, {"n2", "10.0.0.12"}, {"v4only", "10.0.0.13"}},
			"ns/d-lab-ipv6 IPv6 svc=d": {{"n1", "fd00::11"}, {"n2", "fd00::12"}}}},
		{"annotation chooses nodes", []*corev1.Service{lbService("l", v4, map[string]string{AnnotationEndpointNodes: " n2, nosuch"})}, map[string][]ep{
			"ns/l-lab-ipv4 IPv4 svc=l": {{"n2", "10.0.0.12"}}}},
		{"empty annotation: no endpoints", []*corev1.Service{lbService("e", v4, map[string]string{AnnotationEndpointNodes: ""})}, map[string][]ep{
			"ns/e-lab-ipv4 IPv4 svc=e": {}}},
		{"not a LoadBalancer", []*corev1.Service{clusterIP}, map[string][]ep{}},
		{"no-backend filler: no slice", []*corev1.Service{lbService("f", v4, map[string]string{backend.AnnotationNoBackend: "true"})}, map[string][]ep{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Desired(tt.svcs, nodes)
			if d := cmp.Diff(tt.want, summary(got)); d != "" {
				t.Errorf("Desired (-want +got):\n%s", d)
			}
			for _, s := range got {
				if s.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
					t.Errorf("%s: managed-by = %q", s.Name, s.Labels[discoveryv1.LabelManagedBy])
				}
				if d := cmp.Diff([]discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}}, s.Ports); d != "" {
					t.Errorf("%s ports (-want +got):\n%s", s.Name, d)
				}
				for _, e := range s.Endpoints {
					if !*e.Conditions.Ready || !*e.Conditions.Serving || *e.Conditions.Terminating {
						t.Errorf("%s: endpoint on %s not ready: %+v", s.Name, *e.NodeName, e.Conditions)
					}
				}
			}
		})
	}
}
