package controller_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
)

func TestPoolAndServiceGetExternalIP(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("basic", []string{"198.18.0.10-198.18.0.12"})
	f.service("web")
	ips := f.waitIPs("web", "198.18.0.10")
	f.waitPoolAnnotation("web", "basic")
	svc := f.get("web")
	// One write carried the addresses and the annotation: the API server
	// records the annotation as set through the status subresource only.
	if got := annotationWriters(svc, "herald.dev/ip-allocated-from-pool"); !slices.Equal(got, []string{"status"}) {
		t.Errorf("the pool annotation was written through %q, want only the status write", got)
	}
	if m := svc.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ipMode = %v, want VIP", m)
	}
	f.waitEvent(f.ns, "web", "IPAllocated", `Assigned IP [198.18.0.10] from pool "basic"`)

	// Pool status counts follow.
	f.eventually("pool status counts", waitFor, func() (bool, string) {
		var p v1beta1.IPAddressPool
		if err := f.c.Get(f.ctx(), client.ObjectKey{Namespace: v1beta1.Namespace, Name: "basic"}, &p); err != nil {
			return false, err.Error()
		}
		c := poolCondition(&p)
		st := p.Status
		return st.AssignedIPv4 == 1 && st.AvailableIPv4 == 2 && c != nil && c.Status == metav1.ConditionTrue,
			fmt.Sprintf("%+v", st)
	})

	// Deleting the Service frees the address for the next one.
	if err := f.c.Delete(f.ctx(), f.get("web")); err != nil {
		t.Fatal(err)
	}
	f.service("web2")
	f.waitIPs("web2", ips...)
}

func TestSpecificIP(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("specific", []string{"198.18.1.0/28", "fd00:18:1::/120"})
	f.service("by-annotation", withAnnotation("herald.dev/loadBalancerIPs", "198.18.1.7"))
	f.waitIPs("by-annotation", "198.18.1.7")
	f.service("by-spec", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.18.1.9" })
	f.waitIPs("by-spec", "198.18.1.9")
	f.service("metallb-alias", withAnnotation("metallb.universe.tf/loadBalancerIPs", "198.18.1.11"))
	f.waitIPs("metallb-alias", "198.18.1.11")

	// Taken without a sharing key: refused with a reason.
	f.service("clash", withAnnotation("herald.dev/loadBalancerIPs", "198.18.1.7"))
	f.waitEvent(f.ns, "clash", "AllocationFailed", "198.18.1.7")
	f.stayNoIPs("clash", 300*time.Millisecond)
	// Outside every pool.
	f.service("outside", withAnnotation("herald.dev/loadBalancerIPs", "203.0.113.1"))
	f.waitEvent(f.ns, "outside", "AllocationFailed", "203.0.113.1")

	// Changing the request moves the Service.
	svc := f.get("by-annotation")
	f.update(svc, func() { svc.Annotations["herald.dev/loadBalancerIPs"] = "198.18.1.8" })
	f.waitIPs("by-annotation", "198.18.1.8")
	// The freed address serves the Service that waited for it.
	f.waitIPs("clash", "198.18.1.7")
}

func TestPoolAnnotationAndAutoAssign(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("cheap", []string{"198.18.2.0/30"})
	no := false
	f.pool("expensive", []string{"198.18.3.0/30"}, func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = &no })
	f.service("auto")
	f.waitIPs("auto", "198.18.2.0")
	f.service("asks", withAnnotation("herald.dev/address-pool", "expensive"))
	f.waitIPs("asks", "198.18.3.0")
	f.waitPoolAnnotation("asks", "expensive")
	f.service("alias", withAnnotation("metallb.io/address-pool", "expensive"))
	f.waitIPs("alias", "198.18.3.1")
	f.service("unknown", withAnnotation("herald.dev/address-pool", "nope"))
	f.waitEvent(f.ns, "unknown", "AllocationFailed", `"nope"`)
}

func TestSharing(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("shared", []string{"198.18.4.0/29"})
	f.service("tcp", withAnnotation("herald.dev/allow-shared-ip", "k1"), withPorts(80))
	ip := f.waitIPs("tcp")
	f.service("tcp2", withAnnotation("metallb.universe.tf/allow-shared-ip", "k1"), withPorts(443))
	f.waitIPs("tcp2", ip...)
	// Same port: cannot share, gets its own address.
	f.service("clash", withAnnotation("herald.dev/allow-shared-ip", "k1"), withPorts(80))
	other := f.waitIPs("clash")
	if other[0] == ip[0] {
		t.Fatalf("clashing port shared %s", ip[0])
	}
	// Explicitly asking for the shared address with a clashing port fails.
	f.service("clash-explicit", withAnnotation("herald.dev/allow-shared-ip", "k1"), withPorts(443),
		withAnnotation("herald.dev/loadBalancerIPs", ip[0]))
	f.waitEvent(f.ns, "clash-explicit", "AllocationFailed", "443")
	// Different key: refused on the explicit address.
	f.service("otherkey", withAnnotation("herald.dev/allow-shared-ip", "k2"), withPorts(8080),
		withAnnotation("herald.dev/loadBalancerIPs", ip[0]))
	f.waitEvent(f.ns, "otherkey", "AllocationFailed", ip[0])
	// Local policy must match.
	f.service("local", withAnnotation("herald.dev/allow-shared-ip", "k1"), withPorts(9090),
		withAnnotation("herald.dev/loadBalancerIPs", ip[0]),
		func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal })
	f.waitEvent(f.ns, "local", "AllocationFailed", "externalTrafficPolicy")
}

func TestDualStack(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("dual", []string{"198.18.5.0/30", "fd00:18:5::/126"})
	f.pool("v6only", []string{"fd00:18:6::/126"}, func(p *v1beta1.IPAddressPool) { no := false; p.Spec.AutoAssign = &no })
	req := corev1.IPFamilyPolicyRequireDualStack
	pref := corev1.IPFamilyPolicyPreferDualStack
	single := corev1.IPFamilyPolicySingleStack
	f.service("v4-first", func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &req
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	})
	f.waitIPs("v4-first", "198.18.5.0", "fd00:18:5::")
	f.service("v6-first", func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &pref
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	})
	f.waitIPs("v6-first", "fd00:18:5::1", "198.18.5.1")
	f.service("v6-single", func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &single
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	})
	f.waitIPs("v6-single", "fd00:18:5::2")
	f.service("require-in-v6-pool", withAnnotation("herald.dev/address-pool", "v6only"), func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &req
	})
	f.waitEvent(f.ns, "require-in-v6-pool", "AllocationFailed", "IPv4")
	f.service("prefer-in-v6-pool", withAnnotation("herald.dev/address-pool", "v6only"), func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &pref
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	})
	f.waitIPs("prefer-in-v6-pool", "fd00:18:6::")
}

func TestExhaustionThenFreed(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("tiny", []string{"198.18.7.1/32", "198.18.7.2/32"})
	f.service("a")
	f.service("b")
	f.waitIPs("a")
	f.waitIPs("b")
	f.service("c")
	f.waitEvent(f.ns, "c", "AllocationFailed", "tiny")
	f.stayNoIPs("c", 300*time.Millisecond)
	ipA := ingressIPs(f.get("a"))
	if err := f.c.Delete(f.ctx(), f.get("a")); err != nil {
		t.Fatal(err)
	}
	f.waitIPs("c", ipA...)

	// A new pool also serves pending Services.
	f.service("d")
	f.waitEvent(f.ns, "d", "AllocationFailed", "")
	f.pool("more", []string{"198.18.8.1/32"})
	f.waitIPs("d", "198.18.8.1")
}

func TestClassFiltering(t *testing.T) {
	f := newFixture(t)
	f.startController(func(o *controller.Options) { o.LBClass = "herald.dev/lb" })
	f.pool("classes", []string{"198.18.9.0/29"})
	other := "example.com/other-lb"
	ours := "herald.dev/lb"
	f.service("other", func(s *corev1.Service) { s.Spec.LoadBalancerClass = &other })
	f.service("ours", func(s *corev1.Service) { s.Spec.LoadBalancerClass = &ours })
	f.service("none")
	f.waitIPs("ours")
	f.waitIPs("none")
	f.stayNoIPs("other", 500*time.Millisecond)

	// Type change away from LoadBalancer releases the address.
	svc := f.get("none")
	f.update(svc, func() {
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		svc.Spec.AllocateLoadBalancerNodePorts = nil
	})
	f.waitNoIPs("none")
	f.eventually("annotation removed", waitFor, func() (bool, string) {
		a := f.get("none").Annotations["herald.dev/ip-allocated-from-pool"]
		return a == "", a
	})
}

func TestClassOnly(t *testing.T) {
	f := newFixture(t)
	f.startController(func(o *controller.Options) { o.LBClass = "herald.dev/lb"; o.LBClassOnly = true })
	f.pool("classonly", []string{"198.18.10.0/29"})
	ours := "herald.dev/lb"
	f.service("ours", func(s *corev1.Service) { s.Spec.LoadBalancerClass = &ours })
	f.service("none")
	f.waitIPs("ours")
	f.stayNoIPs("none", 500*time.Millisecond)
}

func TestServiceAllocationSelectors(t *testing.T) {
	f := newFixture(t)
	f.startController()
	f.pool("general", []string{"198.18.11.0/30"})
	f.pool("team", []string{"198.18.12.0/30"}, func(p *v1beta1.IPAddressPool) {
		p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 10, Namespaces: []string{f.ns}}
	})
	f.pool("premium", []string{"198.18.13.0/30"}, func(p *v1beta1.IPAddressPool) {
		p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 5,
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "premium"}}}}
	})
	f.service("plain")
	f.waitIPs("plain", "198.18.12.0") // namespace-scoped pool before the general one
	f.service("premium", func(s *corev1.Service) { s.Labels = map[string]string{"tier": "premium"} })
	f.waitIPs("premium", "198.18.13.0") // priority 5 before 10
}

func TestConfigMapSource(t *testing.T) {
	f := newFixture(t)
	f.startController()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: v1beta1.LegacyConfigMapName},
		Data: map[string]string{"config": `
address-pools:
- name: legacy
  protocol: layer2
  addresses:
  - 198.18.14.0/30
`},
	}
	if err := f.c.Create(f.ctx(), cm); err != nil {
		t.Fatal(err)
	}
	f.service("legacy")
	f.waitIPs("legacy", "198.18.14.0")
	f.waitPoolAnnotation("legacy", "legacy")
	// A CRD pool with the same name is a configuration error, reported on
	// the pool; the ConfigMap's pool stays in force.
	f.pool("legacy", []string{"198.18.15.0/30"})
	f.waitPoolInvalid("legacy", "herald-config")
	f.service("after")
	f.waitIPs("after", "198.18.14.1")
}

func (f *fixture) waitPoolInvalid(name, substr string) {
	f.t.Helper()
	f.eventually("pool "+name+" Valid=False", waitFor, func() (bool, string) {
		var p v1beta1.IPAddressPool
		if err := f.c.Get(f.ctx(), client.ObjectKey{Namespace: v1beta1.Namespace, Name: name}, &p); err != nil {
			return false, err.Error()
		}
		c := poolCondition(&p)
		if c == nil {
			return false, "no condition"
		}
		return c.Status == metav1.ConditionFalse && strings.Contains(c.Message, substr), c.Message
	})
}

func TestBadConfigKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	f.startController()
	p := f.pool("good", []string{"198.18.16.0/30"})
	bystander := f.pool("bystander", []string{"198.18.20.0/30"}, func(p *v1beta1.IPAddressPool) {
		no := false
		p.Spec.AutoAssign = &no
	})
	f.service("a")
	f.waitIPs("a", "198.18.16.0")

	// An overlapping pool makes the whole configuration invalid, and so
	// does a malformed one.
	f.pool("overlap", []string{"198.18.16.2/31"})
	f.waitPoolInvalid("overlap", "good")
	f.waitEvent(v1beta1.Namespace, "overlap", "InvalidConfiguration", "spec.addresses")
	f.pool("malformed", []string{"198.18.16.300/24"})
	f.waitPoolInvalid("malformed", "spec.addresses[0]")
	f.eventually("a valid pool says the configuration is blocked by others", waitFor, func() (bool, string) {
		var g v1beta1.IPAddressPool
		_ = f.c.Get(f.ctx(), client.ObjectKeyFromObject(bystander), &g)
		c := poolCondition(&g)
		return c != nil && c.Reason == v1beta1.ReasonBlockedByOther, fmt.Sprintf("%+v", c)
	})

	// An edit to the good pool that would drop a's address is not applied
	// while the configuration is invalid.
	f.update(p, func() { p.Spec.Addresses = []string{"198.18.17.0/30"} })
	f.service("b")
	f.waitIPs("b", "198.18.16.1") // still served from the last good config
	if got := ingressIPs(f.get("a")); fmt.Sprint(got) != "[198.18.16.0]" {
		t.Fatalf("a's address changed under a bad config: %v", got)
	}

	// Fixing the configuration applies the edit: a leaves the pool and is
	// re-assigned, and the event says why.
	for _, name := range []string{"overlap", "malformed"} {
		var bad v1beta1.IPAddressPool
		_ = f.c.Get(f.ctx(), client.ObjectKey{Namespace: v1beta1.Namespace, Name: name}, &bad)
		if err := f.c.Delete(f.ctx(), &bad); err != nil {
			t.Fatal(err)
		}
	}
	// Both a and b leave the pool; which of them is re-assigned first
	// (and gets .0) is up to the controller's queue.
	newPool := netip.MustParsePrefix("198.18.17.0/30")
	f.eventually("a and b re-assigned from the edited pool", waitFor, func() (bool, string) {
		a, b := ingressIPs(f.get("a")), ingressIPs(f.get("b"))
		if len(a) != 1 || len(b) != 1 || a[0] == b[0] {
			return false, fmt.Sprintf("a %v, b %v", a, b)
		}
		for _, ip := range []string{a[0], b[0]} {
			if addr, err := netip.ParseAddr(ip); err != nil || !newPool.Contains(addr) {
				return false, fmt.Sprintf("a %v, b %v", a, b)
			}
		}
		return true, ""
	})
	f.waitEvent(f.ns, "a", "IPAllocated", "198.18.16.0 is no longer in any pool")
}

func TestRestartKeepsEveryIP(t *testing.T) {
	f := newFixture(t)
	stop := f.startController()
	f.pool("restart", []string{"198.18.18.0/28"})
	names := []string{"s0", "s1", "s2", "s3", "s4", "s5"}
	want := map[string]string{}
	for _, n := range names {
		f.service(n)
	}
	for _, n := range names {
		want[n] = f.waitIPs(n)[0]
	}
	stop()

	// While the controller is down: delete the first two, create three
	// new, and break s2's annotation: a Service whose request no longer
	// parses keeps its address, which stays reserved for it.
	for _, n := range names[:2] {
		if err := f.c.Delete(f.ctx(), f.get(n)); err != nil {
			t.Fatal(err)
		}
		delete(want, n)
	}
	s2 := f.get("s2")
	s2.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": want["s2"] + ","}
	if err := f.c.Update(f.ctx(), s2); err != nil {
		t.Fatal(err)
	}
	newNames := []string{"new1", "new2", "new3"}
	for _, n := range newNames {
		f.service(n)
	}

	f.startController()
	got := map[string]string{}
	for _, n := range newNames {
		ip := f.waitIPs(n)[0]
		if other, dup := got[ip]; dup {
			t.Errorf("%s and %s both got %s", other, n, ip)
		}
		got[ip] = n
	}
	for n, ip := range want {
		if now := ingressIPs(f.get(n)); len(now) != 1 || now[0] != ip {
			t.Errorf("%s moved from %s to %v after restart", n, ip, now)
		}
		if other, taken := got[ip]; taken {
			t.Errorf("%s got %s, still held by %s", other, ip, n)
		}
	}
}

func TestTwoReplicasLeaderElection(t *testing.T) {
	f := newFixture(t)
	withLE := func(o *controller.Options) { o.LeaderElection = true; o.LeaderElectionID = "herald-test-" + f.ns[:20] }
	stop1 := f.startController(withLE)
	f.startController(withLE)
	f.pool("replicas", []string{"198.18.19.0/28"})
	for i := 0; i < 5; i++ {
		f.service(fmt.Sprintf("r%d", i))
	}
	seen := map[string]string{}
	for i := 0; i < 5; i++ {
		n := fmt.Sprintf("r%d", i)
		ip := f.waitIPs(n)[0]
		if prev, dup := seen[ip]; dup {
			t.Fatalf("%s and %s share %s", prev, n, ip)
		}
		seen[ip] = n
	}
	// Stopping the first replica (which may or may not lead) keeps serving.
	stop1()
	f.service("after-failover")
	ip := f.waitIPs("after-failover")[0]
	if prev, dup := seen[ip]; dup {
		t.Fatalf("after failover, %s got %s, held by %s", "after-failover", ip, prev)
	}
}

// TestPoolRenamed: a pool renamed (the new one created, which overlaps
// and is refused, then the old one deleted) keeps its Services'
// addresses, and their pool annotation follows the new name.
func TestPoolRenamed(t *testing.T) {
	f := newFixture(t)
	f.startController()
	old := f.pool("old-name", []string{"198.18.21.0/29"})
	f.service("web")
	ip := f.waitIPs("web")[0]
	f.waitPoolAnnotation("web", "old-name")

	f.pool("new-name", []string{"198.18.21.0/29"})
	if err := f.c.Delete(f.ctx(), old); err != nil {
		t.Fatal(err)
	}
	f.waitPoolAnnotation("web", "new-name")
	if got := ingressIPs(f.get("web")); len(got) != 1 || got[0] != ip {
		t.Errorf("web has %v after the rename, want %s kept", got, ip)
	}
}
