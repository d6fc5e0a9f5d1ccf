//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/e2e/lab/endpoints"
)

// TestLocalPolicy: with externalTrafficPolicy: Local only nodes with a
// ready endpoint may announce. Each node gets a Service whose only endpoint
// is on it, so the owner is forced; then an endpoint moves and the owner
// follows it; a Service without endpoints is announced by nobody.
func TestLocalPolicy(t *testing.T) {
	requireLab(t)
	nodes := drv.NodeNames()
	svcs := map[string]string{} // Service -> node with its endpoint
	for _, n := range nodes {
		name := "local-" + n
		newService(t, name, localPolicy, annotate(endpoints.AnnotationEndpointNodes, n))
		svcs[name] = n
	}
	ips := map[string]netip.Addr{}
	for name := range svcs {
		ips[name] = waitIPs(t, name, 1)[0]
	}
	newService(t, "local-none", localPolicy, annotate(endpoints.AnnotationEndpointNodes, ""))
	noneIP := waitIPs(t, "local-none", 1)[0]

	t.Run("answers", func(t *testing.T) {
		requireSpeaker(t)
		for name, n := range svcs {
			if got := waitOwner(t, name, ips[name], true, 20*time.Second); got != n {
				t.Fatalf("Service %s has its only endpoint on %s, but %s answers for %s", name, n, got, ips[name])
			}
			waitCurl(t, lab.HostL2Client, ips[name], 80, n, 10*time.Second)
		}
		consistently(t, 3*time.Second, "nobody answers for a Local Service without endpoints", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := lab.ARPOwners(ctx, drv, lab.HostL2Client, noneIP)
			return errors.Is(err, lab.ErrNoAnswer), fmt.Sprintf("ARP for %s: %v", noneIP, err)
		})
		if len(nodes) < 2 {
			return
		}
		// Move the first Service's endpoint to another node.
		from, to := nodes[0], nodes[1]
		name := "local-" + from
		svc := getService(t, name)
		svc.Annotations[endpoints.AnnotationEndpointNodes] = to
		if err := cl.Update(ctxT(t), svc); err != nil {
			t.Fatal(err)
		}
		if got := waitOwner(t, name, ips[name], true, 20*time.Second); got != to {
			t.Fatalf("endpoint moved from %s to %s, but %s answers", from, to, got)
		}
		waitCurl(t, lab.HostL2Client, ips[name], 80, to, 10*time.Second)
	})

	t.Run("bgp", func(t *testing.T) {
		requireSpeaker(t)
		bgpLocalScenario(t)
	})
}

// TestNodeExclusion: a node labelled exclude-from-external-load-balancers
// and a node whose network is unavailable never answer; with three nodes
// every address is owned by the third, and over BGP only the third is a
// next hop.
func TestNodeExclusion(t *testing.T) {
	requireLab(t)
	nodes := drv.NodeNames()
	if len(nodes) < 3 {
		t.Skip("needs three nodes")
	}
	excluded, unavailable, eligible := nodes[0], nodes[1], nodes[2]
	setNode(t, excluded, func(n *corev1.Node) { n.Labels[v1beta1.LabelExcludeFromLB] = "" },
		func(n *corev1.Node) { delete(n.Labels, v1beta1.LabelExcludeFromLB) }, false)
	setNode(t, unavailable, func(n *corev1.Node) { setCondition(n, corev1.NodeNetworkUnavailable, corev1.ConditionTrue) },
		func(n *corev1.Node) { setCondition(n, corev1.NodeNetworkUnavailable, corev1.ConditionFalse) }, true)

	var names []string
	for i := 0; i < 4; i++ {
		fam := families[i%2]
		name := fmt.Sprintf("exclude-%d", i)
		newService(t, name, family(fam))
		names = append(names, name)
	}
	t.Run("answers", func(t *testing.T) {
		requireSpeaker(t)
		for _, name := range names {
			ip := waitIPs(t, name, 1)[0]
			if got := waitOwner(t, name, ip, true, 20*time.Second); got != eligible {
				t.Fatalf("%s is answered by %s; only %s may answer (%s is excluded, %s has NetworkUnavailable)", ip, got, eligible, excluded, unavailable)
			}
			waitCurl(t, lab.HostL2Client, ip, 80, eligible, 10*time.Second)
		}
	})
	t.Run("bgp", func(t *testing.T) {
		requireSpeaker(t)
		bgpExclusionScenario(t, eligible)
	})
}

// TestNodeLeaving: a node the cluster autoscaler taints for deletion
// hands its addresses over while it still runs. In layer 2 the owner
// changes and a curl loop across the change finds no gap; over BGP the
// router drops the node's next hop. Untainted, the node is a BGP next hop
// again (layer-2 addresses stay where they are: no failback).
func TestNodeLeaving(t *testing.T) {
	requireLab(t)
	requireSpeaker(t)
	nodes := drv.NodeNames()
	if len(nodes) < 2 {
		t.Skip("needs two nodes")
	}
	setupBGP(t)
	newService(t, "leaving-l2", family(lab.IPv4))
	ip := waitIPs(t, "leaving-l2", 1)[0]
	victim := waitOwner(t, "leaving-l2", ip, true, 20*time.Second)
	waitCurl(t, lab.HostL2Client, ip, 80, victim, 10*time.Second)
	newService(t, "leaving-bgp", family(lab.IPv4), annotate(v1beta1.Annotation(v1beta1.AnnotationAddressPool), poolBGP))
	bgpIP := waitIPs(t, "leaving-bgp", 1)[0]
	waitNextHops(t, bgpIP, nodeAddrs(t, nodes, lab.IPv4))
	var others []string
	for _, n := range nodes {
		if n != victim {
			others = append(others, n)
		}
	}

	loop := startCurlLoop(t, lab.HostL2Client, ip, 40*time.Millisecond, 60*time.Second)
	defer loop.stop()
	loop.waitAnswers(t, victim, 5, 10*time.Second)
	t0 := time.Now()
	taint := corev1.Taint{Key: v1beta1.TaintToBeDeleted, Value: strconv.FormatInt(t0.Unix(), 10), Effect: corev1.TaintEffectNoSchedule}
	untaint := func(n *corev1.Node) {
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(x corev1.Taint) bool { return x.Key == taint.Key })
	}
	setNode(t, victim, func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taint) }, untaint, false)

	newOwner := ""
	eventually(t, 10*time.Second, fmt.Sprintf("the curl loop to %s is answered by a node other than %s", ip, victim), func() (bool, string) {
		loop.mu.Lock()
		defer loop.mu.Unlock()
		for _, r := range loop.res {
			if r.ok && r.at.After(t0) && r.text != victim {
				newOwner = r.text
				figure(t, "node-leaving-l2-handover", r.at.Sub(t0))
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d results", len(loop.res))
	})
	loop.waitAnswers(t, newOwner, 5, 5*time.Second)
	checkHandover(t, loop.stop(), t0, victim+" being tainted "+taint.Key, newOwner)
	if got := waitOwner(t, "leaving-l2", ip, true, 10*time.Second); got != newOwner {
		t.Errorf("curl reaches %s but %s answers ARP for %s", newOwner, got, ip)
	}
	waitNextHops(t, bgpIP, nodeAddrs(t, others, lab.IPv4))

	setNode(t, victim, untaint, func(*corev1.Node) {}, false)
	waitNextHops(t, bgpIP, nodeAddrs(t, nodes, lab.IPv4))
	if got := waitOwner(t, "leaving-l2", ip, true, 10*time.Second); got != newOwner {
		t.Errorf("after the taint went, %s answers for %s (moved back from %s)", got, ip, newOwner)
	}
}

// setNode changes a Node (its status when status is true) and undoes the
// change when the test ends.
func setNode(t *testing.T, name string, change, undo func(*corev1.Node), status bool) {
	t.Helper()
	apply := func(ctx context.Context, f func(*corev1.Node)) error {
		var n corev1.Node
		if err := cl.Get(ctx, client.ObjectKey{Name: name}, &n); err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		f(&n)
		if status {
			return cl.Status().Update(ctx, &n)
		}
		return cl.Update(ctx, &n)
	}
	if err := apply(ctxT(t), change); err != nil {
		t.Fatalf("change node %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := apply(context.Background(), undo); err != nil {
			t.Errorf("restore node %s: %v", name, err)
		}
	})
}

func setCondition(n *corev1.Node, typ corev1.NodeConditionType, st corev1.ConditionStatus) {
	now := metav1.Now()
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			n.Status.Conditions[i].Status = st
			n.Status.Conditions[i].LastTransitionTime = now
			return
		}
	}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: typ, Status: st, LastTransitionTime: now})
}
