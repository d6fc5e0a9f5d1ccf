//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// The second segment of TestL2AnnounceLinkDown: interface vip0 on every
// node and on the L2 client, a pool of its own announced only there.
const (
	vipIface = "vip0"
	poolVIP  = "e2e-vip"
)

var (
	vipClient = netip.MustParsePrefix("172.31.249.100/24")
	vipRange  = "172.31.249.10-172.31.249.19"
)

// TestL2AnnounceLinkDown: the interface a node answers on loses its link
// (the switch port of vip0 goes down) while memberlist, over eth0, keeps
// working, so no one sees the node fail. The node steps aside: another
// node answers ARP for the address on vip0. When the link is back the
// address stays where it went (no failback).
func TestL2AnnounceLinkDown(t *testing.T) {
	l := requireNetnsLab(t, "the test adds a second segment to the node namespaces")
	if len(drv.NodeNames()) < 2 {
		t.Skip("a handover needs two nodes")
	}
	ctx := ctxT(t)
	macs, err := l.AddSegment(ctx, vipIface, vipClient)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.RemoveSegment(context.Background(), vipIface); err != nil {
			t.Errorf("remove the second segment: %v", err)
		}
	})
	vipNode := map[string]string{}
	for n, mac := range macs {
		vipNode[mac] = n
	}

	objs := []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: poolVIP, Namespace: v1beta1.Namespace},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{vipRange}, AutoAssign: ptr.To(false)}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: poolVIP, Namespace: v1beta1.Namespace},
			Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{poolVIP}, Interfaces: []string{vipIface}}},
	}
	for _, o := range objs {
		_ = deleteAndWait(ctx, o.DeepCopyObject().(client.Object))
		if err := cl.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
		t.Cleanup(func() {
			if err := deleteAndWait(context.Background(), o); err != nil {
				t.Errorf("delete %s: %v", o.GetName(), err)
			}
		})
	}

	name := "l2-vip"
	newService(t, name, annotate(v1beta1.AnnotationPrefix+v1beta1.AnnotationAddressPool, poolVIP))
	ip := waitIPs(t, name, 1)[0]
	// vipOwner: the one node whose vip0 MAC answers ARP on the segment.
	vipOwner := func() (string, string) {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := lab.ARPOwnersOn(c, drv, lab.HostL2Client, vipIface, ip)
		if err != nil {
			return "", err.Error()
		}
		if len(got) != 1 || vipNode[got[0]] == "" {
			return "", fmt.Sprintf("MACs answering: %v (vip0 MACs: %v)", got, macs)
		}
		return vipNode[got[0]], ""
	}
	var owner string
	eventually(t, 20*time.Second, "one node answers ARP for "+ip.String()+" on "+vipIface, func() (bool, string) {
		n, why := vipOwner()
		owner = n
		return n != "", why
	})
	t.Logf("%s is answered on %s by %s", ip, vipIface, owner)

	// The new owner's gratuitous ARP on the segment times the handover
	// (arping's one-second rounds would hide it).
	capture, err := lab.StartCaptureOn(ctx, drv, lab.HostL2Client, vipIface, lab.AnnouncementFilter(ip), 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Stop()
	t0 := time.Now()
	if err := l.SegmentLink(ctx, owner, vipIface, false); err != nil {
		t.Fatal(err)
	}
	var next string
	eventually(t, 20*time.Second, "another node answers for "+ip.String()+" once "+owner+"'s "+vipIface+" has no link", func() (bool, string) {
		n, why := vipOwner()
		if n == "" || n == owner {
			return false, strings.TrimSpace(why + " owner " + n)
		}
		next = n
		return true, ""
	})
	garp, ok := lab.FirstAnnouncement(capture.Packets(), ip, macs[next], t0)
	if !ok {
		t.Fatalf("no gratuitous ARP for %s from %s (%s) on %s", ip, next, macs[next], vipIface)
	}
	took := garp.Time.Sub(t0)
	figure(t, "L2 answering interface loses its link (memberlist up) -> gratuitous ARP from the new owner", took)
	t.Logf("%s's %s down: %s announces %s after %s", owner, vipIface, next, ip, took.Round(time.Millisecond))
	// The old owner stepped aside (it was not declared dead: its eth0
	// never failed), so only the new owner's status names the address.
	eventually(t, 10*time.Second, "the ServiceL2Status names only "+next, func() (bool, string) {
		nodes, err := l2StatusNodes(ctx, name, ip)
		if err != nil {
			return false, err.Error()
		}
		return len(nodes) == 1 && nodes[0] == next, fmt.Sprintf("status names %v", nodes)
	})

	if err := l.SegmentLink(ctx, owner, vipIface, true); err != nil {
		t.Fatalf("set %s's %s up again: %v", owner, vipIface, err)
	}
	consistently(t, 3*time.Second, ip.String()+" stays with "+next+" once "+owner+"'s link is back", func() (bool, string) {
		n, why := vipOwner()
		return n == next, strings.TrimSpace(why + " owner " + n)
	})
}
