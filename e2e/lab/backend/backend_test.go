package backend

import (
	"context"
	"net/netip"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func svc(name string, etp corev1.ServiceExternalTrafficPolicy, ips []string, ports ...int32) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp},
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func slice(svcName string, ready bool, nodes ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: svcName + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: svcName}}}
	for _, n := range nodes {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
	}
	return s
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDesired(t *testing.T) {
	cluster, local := corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal
	udp := svc("udp", cluster, []string{"10.0.0.9"}, 53)
	udp.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	notLB := svc("clusterip", cluster, []string{"10.0.0.8"}, 80)
	notLB.Spec.Type = corev1.ServiceTypeClusterIP
	filler := svc("filler", cluster, []string{"10.0.0.7"}, 80)
	filler.Annotations = map[string]string{AnnotationNoBackend: "true"}
	notFiller := svc("not-filler", cluster, []string{"10.0.0.6"}, 80)
	notFiller.Annotations = map[string]string{AnnotationNoBackend: "false"}
	tests := []struct {
		name   string
		svcs   []*corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   map[netip.AddrPort]string
	}{
		{"nothing", nil, nil, map[netip.AddrPort]string{}},
		{"cluster: every port of every IP", []*corev1.Service{svc("a", cluster, []string{"10.0.0.1", "fd00::1"}, 80, 8080)}, nil,
			map[netip.AddrPort]string{ap("10.0.0.1:80"): "ns/a", ap("10.0.0.1:8080"): "ns/a", ap("[fd00::1]:80"): "ns/a", ap("[fd00::1]:8080"): "ns/a"}},
		{"pending, UDP and non-LB Services are not served", []*corev1.Service{svc("p", cluster, nil, 80), udp, notLB}, nil, map[netip.AddrPort]string{}},
		{"no-backend Services are not served", []*corev1.Service{filler, notFiller}, nil,
			map[netip.AddrPort]string{ap("10.0.0.6:80"): "ns/not-filler"}},
		{"shared IP", []*corev1.Service{svc("a", cluster, []string{"10.0.0.1"}, 80), svc("b", cluster, []string{"10.0.0.1"}, 8080)}, nil,
			map[netip.AddrPort]string{ap("10.0.0.1:80"): "ns/a", ap("10.0.0.1:8080"): "ns/b"}},
		{"local with a ready endpoint here", []*corev1.Service{svc("l", local, []string{"10.0.0.2"}, 80)},
			[]*discoveryv1.EndpointSlice{slice("l", true, "n2", "n1")}, map[netip.AddrPort]string{ap("10.0.0.2:80"): "ns/l"}},
		{"local with endpoints elsewhere", []*corev1.Service{svc("l", local, []string{"10.0.0.2"}, 80)},
			[]*discoveryv1.EndpointSlice{slice("l", true, "n2")}, map[netip.AddrPort]string{}},
		{"local with an unready endpoint here", []*corev1.Service{svc("l", local, []string{"10.0.0.2"}, 80)},
			[]*discoveryv1.EndpointSlice{slice("l", false, "n1")}, map[netip.AddrPort]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, Desired("n1", tt.svcs, tt.slices)); d != "" {
				t.Errorf("Desired (-want +got):\n%s", d)
			}
		})
	}
}

// fakeLo is a Loopback in memory.
type fakeLo map[netip.Addr]bool

func (f fakeLo) List(context.Context) ([]netip.Addr, error) {
	var out []netip.Addr
	for a := range f {
		out = append(out, a)
	}
	return out, nil
}
func (f fakeLo) Add(_ context.Context, a netip.Addr) error { f[a] = true; return nil }
func (f fakeLo) Del(_ context.Context, a netip.Addr) error { delete(f, a); return nil }

func TestReconcileLoopback(t *testing.T) {
	lo := fakeLo{netip.MustParseAddr("127.0.0.1"): true, netip.MustParseAddr("::1"): true, netip.MustParseAddr("127.0.0.2"): true}
	p := NewProxy("n1", nil, lo, logr.Discard())
	// Port 0: the kernel picks one, and 127.0.0.2 is a loopback address
	// that must be left alone; 127.0.0.3 is "a Service IP" for the test.
	want := map[netip.AddrPort]string{ap("127.0.0.1:0"): "ns/a"}
	if err := p.Reconcile(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if len(p.servers) != 1 {
		t.Fatalf("%d listeners, want 1", len(p.servers))
	}
	lo[netip.MustParseAddr("fd00::99")] = true // a leftover Service IP
	if err := p.Reconcile(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if len(p.servers) != 0 {
		t.Errorf("%d listeners left, want none", len(p.servers))
	}
	if lo[netip.MustParseAddr("fd00::99")] {
		t.Error("a Service IP no longer wanted stayed on lo")
	}
	for _, keep := range []string{"127.0.0.1", "::1", "127.0.0.2"} {
		if !lo[netip.MustParseAddr(keep)] {
			t.Errorf("loopback address %s was removed", keep)
		}
	}
}
