package servicereq

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/model"
)

func ptr[T any](v T) *T { return &v }

func svc(mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestHandles(t *testing.T) {
	tests := []struct {
		name  string
		class Class
		svc   *corev1.Service
		want  bool
	}{
		{"lb no class", Class{}, svc(nil), true},
		{"cluster ip", Class{}, svc(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), false},
		{"other class", Class{}, svc(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("other.io/lb") }), false},
		{"our class", Class{Name: "herald.dev/lb"}, svc(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("herald.dev/lb") }), true},
		{"no class with our class set", Class{Name: "herald.dev/lb"}, svc(nil), true},
		{"no class, only ours", Class{Name: "herald.dev/lb", Only: true}, svc(nil), false},
		{"our class, only ours", Class{Name: "herald.dev/lb", Only: true}, svc(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("herald.dev/lb") }), true},
		{"other class with ours set", Class{Name: "herald.dev/lb"}, svc(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("x/y") }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.class.Handles(tc.svc); got != tc.want {
				t.Errorf("Handles = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromService(t *testing.T) {
	key := model.ServiceKey{Namespace: "ns", Name: "web"}
	base := func(mut func(*model.Request)) model.Request {
		r := model.Request{
			Service:       key,
			ServiceLabels: map[string]string{"app": "web"},
			Ports:         []model.Port{{Protocol: model.TCP, Port: 80}},
		}
		if mut != nil {
			mut(&r)
		}
		return r
	}
	tests := []struct {
		name    string
		svc     *corev1.Service
		want    model.Request
		wantErr string
	}{
		{"plain", svc(nil), base(nil), ""},
		{"herald pool", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"herald.dev/address-pool": "gold"}
		}), base(func(r *model.Request) { r.Pool = "gold" }), ""},
		{"metallb.io alias", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.io/address-pool": "gold", "metallb.universe.tf/allow-shared-ip": "k"}
		}), base(func(r *model.Request) { r.Pool = "gold"; r.SharingKey = "k" }), ""},
		{"herald wins over alias", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"herald.dev/address-pool": "a", "metallb.universe.tf/address-pool": "b"}
		}), base(func(r *model.Request) { r.Pool = "a" }), ""},
		{"loadBalancerIPs dual", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"herald.dev/loadBalancerIPs": "10.0.0.5, fd00::5"}
		}), base(func(r *model.Request) {
			r.IPs = []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")}
		}), ""},
		{"spec.loadBalancerIP", svc(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "10.0.0.7" }),
			base(func(r *model.Request) { r.IPs = []netip.Addr{netip.MustParseAddr("10.0.0.7")} }), ""},
		{"both ways to ask", svc(func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "10.0.0.7"
			s.Annotations = map[string]string{"herald.dev/loadBalancerIPs": "10.0.0.5"}
		}), model.Request{}, "annotation herald.dev/loadBalancerIPs: cannot be used together with spec.loadBalancerIP"},
		{"bad spec ip", svc(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "10.0.0" }),
			model.Request{}, `spec.loadBalancerIP: "10.0.0" is not an IP address`},
		{"two v4", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": "10.0.0.5,10.0.0.6"}
		}), model.Request{}, "annotation metallb.universe.tf/loadBalancerIPs: at most one address per family: 10.0.0.5 and 10.0.0.6 are both IPv4"},
		{"dual stack policy", svc(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
		}), base(func(r *model.Request) {
			r.Policy = model.RequireDualStack
			r.Families = []model.Family{model.IPv6, model.IPv4}
		}), ""},
		{"prefer dual", svc(func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyPreferDualStack) }),
			base(func(r *model.Request) { r.Policy = model.PreferDualStack }), ""},
		{"local with selector and udp", svc(func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.Selector = map[string]string{"b": "2", "a": "1"}
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Protocol: corev1.ProtocolUDP, Port: 53}, corev1.ServicePort{Protocol: corev1.ProtocolSCTP, Port: 9})
		}), base(func(r *model.Request) {
			r.Local = true
			r.Selector = "a=1,b=2"
			r.Ports = append(r.Ports, model.Port{Protocol: model.UDP, Port: 53}, model.Port{Protocol: model.SCTP, Port: 9})
		}), ""},
		{"empty loadBalancerIPs asks for nothing", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": " "}
		}), base(nil), ""},
		{"empty loadBalancerIPs with spec.loadBalancerIP", svc(func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "10.0.0.7"
			s.Annotations = map[string]string{"herald.dev/loadBalancerIPs": ""}
		}), base(func(r *model.Request) { r.IPs = []netip.Addr{netip.MustParseAddr("10.0.0.7")} }), ""},
		{"current from status", svc(func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "10.0.0.9"}, {Hostname: "x"}, {IP: "fd00::9"}}
		}), base(func(r *model.Request) {
			r.Current = []netip.Addr{netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("fd00::9")}
		}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromService(tc.svc, nil)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIPList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"10.0.0.1", []string{"10.0.0.1"}, ""},
		{" fd00::1 , 10.0.0.1", []string{"fd00::1", "10.0.0.1"}, ""},
		{"::ffff:10.0.0.1", []string{"10.0.0.1"}, ""},
		{"", nil, "empty entry"},
		{"10.0.0.1,", nil, "empty entry"},
		{"fe80::1%eth0", nil, "is not an IP address"},
		{"fd00::1,fd00::2", nil, "at most one address per family"},
		{"10.0.0.256", nil, "is not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseIPList(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, a := range got {
				gs = append(gs, a.String())
			}
			if diff := cmp.Diff(tc.want, gs); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseIPList(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1,fd00::1", " , ", "::ffff:1.2.3.4", "fe80::1%x", "1.2.3.4,1.2.3.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ips, err := ParseIPList(s)
		if err != nil {
			return
		}
		if len(ips) == 0 || len(ips) > 2 {
			t.Fatalf("accepted %q with %d addresses", s, len(ips))
		}
		if len(ips) == 2 && model.FamilyOf(ips[0]) == model.FamilyOf(ips[1]) {
			t.Fatalf("accepted two %s addresses in %q", model.FamilyOf(ips[0]), s)
		}
		for _, ip := range ips {
			if !ip.IsValid() || ip.Is4In6() || ip.Zone() != "" {
				t.Fatalf("accepted odd address %v from %q", ip, s)
			}
		}
	})
}

func FuzzFromService(f *testing.F) {
	f.Add("gold", "10.0.0.1,fd00::1", "key", "")
	f.Add("", "", "", "10.0.0.300")
	f.Fuzz(func(t *testing.T, pool, ips, key, lbip string) {
		s := svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.io/address-pool": pool, "herald.dev/allow-shared-ip": key}
			if ips != "" {
				s.Annotations["herald.dev/loadBalancerIPs"] = ips
			}
			s.Spec.LoadBalancerIP = lbip
		})
		req, err := FromService(s, nil)
		if err != nil {
			if !strings.Contains(err.Error(), ": ") {
				t.Fatalf("error %q does not name its field", err)
			}
			return
		}
		if len(req.IPs) > 2 {
			t.Fatalf("more than two IPs from %q / %q", ips, lbip)
		}
	})
}

// A request that does not parse still carries what the Service holds, and
// Holding keeps exactly that.
func TestHolding(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("fd00::9")
	tests := []struct {
		name    string
		svc     *corev1.Service
		wantErr string
		want    model.Request
		ok      bool
	}{
		{"malformed annotation keeps the status address", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": "10.0.0.1,", "metallb.universe.tf/allow-shared-ip": "k"}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "10.0.0.9"}}
		}), `annotation metallb.universe.tf/loadBalancerIPs: empty entry in "10.0.0.1,"`, model.Request{
			IPs: []netip.Addr{v4}, Current: []netip.Addr{v4}, Families: []model.Family{model.IPv4},
			Policy: model.SingleStack, SharingKey: "k",
		}, true},
		{"dual-stack policy with one address keeps that one", svc(func(s *corev1.Service) {
			s.Annotations = map[string]string{"herald.dev/address-pool": "gold"}
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "fd00::9"}}
		}), "", model.Request{
			IPs: []netip.Addr{v6}, Current: []netip.Addr{v6}, Families: []model.Family{model.IPv6},
			Policy: model.SingleStack,
		}, true},
		{"both families in status order", svc(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyPreferDualStack)
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "fd00::9"}, {IP: "10.0.0.9"}}
		}), "", model.Request{
			IPs: []netip.Addr{v6, v4}, Current: []netip.Addr{v6, v4}, Families: []model.Family{model.IPv6, model.IPv4},
			Policy: model.RequireDualStack,
		}, true},
		{"nothing in status", svc(nil), "", model.Request{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := FromService(tc.svc, nil)
			if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			got, ok := Holding(req)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			tc.want.Service = model.ServiceKey{Namespace: "ns", Name: "web"}
			tc.want.ServiceLabels = map[string]string{"app": "web"}
			tc.want.Ports = []model.Port{{Protocol: model.TCP, Port: 80}}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}
