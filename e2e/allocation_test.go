//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// TestIPSharing: two Services with the same allow-shared-ip key and
// different ports share one address, and both ports answer from the same
// node.
func TestIPSharing(t *testing.T) {
	requireLab(t)
	key := annotate(v1beta1.Annotation(v1beta1.AnnotationAllowSharedIP), "e2e-share")
	newService(t, "share-a", key, port(80))
	newService(t, "share-b", key, port(8080))
	a := waitIPs(t, "share-a", 1)[0]
	b := waitIPs(t, "share-b", 1)[0]
	if a != b {
		t.Fatalf("Services with one sharing key got %s and %s, want one address", a, b)
	}
	t.Run("answers", func(t *testing.T) {
		requireSpeaker(t)
		owner := waitOwner(t, "share-a", a, true, 20*time.Second)
		if o := waitOwner(t, "share-b", b, true, 20*time.Second); o != owner {
			t.Fatalf("a shared address has two owners: %s for share-a, %s for share-b", owner, o)
		}
		waitCurl(t, lab.HostL2Client, a, 80, owner, 10*time.Second)
		waitCurl(t, lab.HostL2Client, a, 8080, owner, 10*time.Second)
	})
}

// TestPoolAnnotation: a Service that names a pool with autoAssign=false
// gets both addresses from it and the annotation saying so.
func TestPoolAnnotation(t *testing.T) {
	requireLab(t)
	newService(t, "gold", dualStack, annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolGold))
	ips := waitIPs(t, "gold", 2)
	for _, ip := range ips {
		if !plan.Gold.Contains(ip) {
			t.Errorf("%s is not from pool %s (%v)", ip, poolGold, plan.Gold.Addresses())
		}
	}
	// The controller writes the status first (it is what users wait for)
	// and the annotation in the next request, so the annotation may trail
	// the addresses by a few milliseconds.
	eventually(t, 5*time.Second, "the pool annotation", func() (bool, string) {
		got := getService(t, "gold").Annotations[v1beta1.Annotation(v1beta1.AnnotationAllocatedFromPool)]
		return got == poolGold, fmt.Sprintf("pool annotation = %q, want %q", got, poolGold)
	})
	// A Service that asks for nothing never gets a gold address.
	newService(t, "not-gold", dualStack)
	for _, ip := range waitIPs(t, "not-gold", 2) {
		if !plan.Main.Contains(ip) {
			t.Errorf("a Service without annotations got %s, not from pool %s", ip, poolMain)
		}
	}
	t.Run("answers", func(t *testing.T) {
		requireSpeaker(t)
		for _, ip := range ips {
			owner := waitOwner(t, "gold", ip, true, 20*time.Second)
			waitCurl(t, lab.HostL2Client, ip, 80, owner, 10*time.Second)
		}
	})
}

// TestSpecificIP: herald.dev/loadBalancerIPs gets exactly the addresses
// asked for.
func TestSpecificIP(t *testing.T) {
	requireLab(t)
	want := []netip.Addr{plan.Main.V4Last, plan.Main.V6Last}
	newService(t, "specific", dualStack,
		annotate(v1beta1.Annotation(v1beta1.AnnotationLoadBalancerIPs), want[0].String()+","+want[1].String()))
	got := waitIPs(t, "specific", 2)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("EXTERNAL-IPs %v, want %v", got, want)
	}
	t.Run("answers", func(t *testing.T) {
		requireSpeaker(t)
		for _, ip := range got {
			owner := waitOwner(t, "specific", ip, true, 20*time.Second)
			waitCurl(t, lab.HostL2Client, ip, 80, owner, 10*time.Second)
		}
	})
}

// TestForeignLoadBalancerClass: a Service of another load balancer's class
// gets no address from Herald (while one of Herald's, created after it,
// does: the controller is working).
func TestForeignLoadBalancerClass(t *testing.T) {
	requireLab(t)
	newService(t, "foreign", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/not-herald") })
	newService(t, "ours")
	waitIPs(t, "ours", 1)
	consistently(t, 3*time.Second, "a foreign-class Service stays without EXTERNAL-IP", func() (bool, string) {
		ips := ingressIPs(getService(t, "foreign"))
		return len(ips) == 0, fmt.Sprintf("it got %v", ips)
	})
}

// TestControllerRestart: restarting the controller moves no address, and
// a Service created while it was down gets a new one when it is back.
func TestControllerRestart(t *testing.T) {
	requireLab(t)
	cases := []struct {
		name string
		opt  svcOpt
		n    int
	}{{"restart-v4", family(lab.IPv4), 1}, {"restart-v6", family(lab.IPv6), 1}, {"restart-dual", dualStack, 2}}
	before := map[string]string{}
	for _, c := range cases {
		newService(t, c.name, c.opt)
	}
	for _, c := range cases {
		before[c.name] = fmt.Sprint(waitIPs(t, c.name, c.n))
	}
	ctx := ctxT(t)
	if err := drv.StopController(ctx); err != nil {
		t.Fatalf("stop controller: %v", err)
	}
	started := false
	t.Cleanup(func() {
		if !started {
			if err := drv.StartController(context.Background()); err != nil {
				t.Errorf("start controller: %v", err)
			}
		}
	})
	newService(t, "restart-during")
	if err := drv.StartController(ctx); err != nil {
		t.Fatalf("start controller: %v", err)
	}
	started = true
	during := waitIPs(t, "restart-during", 1)[0]
	for name, want := range before {
		got := fmt.Sprint(ingressIPs(getService(t, name)))
		if got != want {
			t.Errorf("Service %s: EXTERNAL-IPs %s before the restart, %s after", name, want, got)
		}
		if fmt.Sprint([]netip.Addr{during}) == got {
			t.Errorf("the Service created during the restart got %s, already %s's", during, name)
		}
	}
}

// TestBadPoolKeepsState: breaking a pool marks it Valid=False and changes
// no address; fixing it marks it Valid=True again.
func TestBadPoolKeepsState(t *testing.T) {
	requireLab(t)
	ctx := ctxT(t)
	pool := &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: poolSpare, Namespace: v1beta1.Namespace},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: plan.Spare.Addresses(), AutoAssign: ptr.To(false)},
	}
	_ = deleteAndWait(ctx, pool.DeepCopy())
	if err := cl.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := deleteAndWait(context.Background(), pool.DeepCopy()); err != nil {
			t.Errorf("delete pool: %v", err)
		}
	})
	newService(t, "spare", dualStack, annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolSpare))
	newService(t, "bystander")
	spare := fmt.Sprint(waitIPs(t, "spare", 2))
	bystander := fmt.Sprint(waitIPs(t, "bystander", 1))

	good := append([]string(nil), pool.Spec.Addresses...)
	setAddrs := func(addrs []string) {
		t.Helper()
		var p v1beta1.IPAddressPool
		if err := cl.Get(ctx, client.ObjectKeyFromObject(pool), &p); err != nil {
			t.Fatal(err)
		}
		p.Spec.Addresses = addrs
		if err := cl.Update(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	setAddrs([]string{"172.31.255.300-172.31.255.310"})
	fixed := false
	t.Cleanup(func() {
		if !fixed {
			setAddrs(good)
		}
	})
	waitPoolValid(t, poolSpare, metav1.ConditionFalse)
	consistently(t, 3*time.Second, "addresses stay under a bad configuration", func() (bool, string) {
		s, b := fmt.Sprint(ingressIPs(getService(t, "spare"))), fmt.Sprint(ingressIPs(getService(t, "bystander")))
		return s == spare && b == bystander, fmt.Sprintf("spare %s -> %s, bystander %s -> %s", spare, s, bystander, b)
	})
	setAddrs(good)
	fixed = true
	waitPoolValid(t, poolSpare, metav1.ConditionTrue)
	if s := fmt.Sprint(ingressIPs(getService(t, "spare"))); s != spare {
		t.Errorf("spare's addresses changed from %s to %s", spare, s)
	}
}

func waitPoolValid(t *testing.T, name string, want metav1.ConditionStatus) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("pool %s has Valid=%s", name, want), func() (bool, string) {
		var p v1beta1.IPAddressPool
		err := cl.Get(context.Background(), client.ObjectKey{Namespace: v1beta1.Namespace, Name: name}, &p)
		if apierrors.IsNotFound(err) || err != nil {
			return false, fmt.Sprint(err)
		}
		c := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionValid)
		if c == nil {
			return false, "no Valid condition"
		}
		return c.Status == want, fmt.Sprintf("Valid=%s: %s", c.Status, c.Message)
	})
}
