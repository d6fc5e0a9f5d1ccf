//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
)

// TestL2KernelARP: a node whose kernel answers ARP for the Service
// addresses on it (the lab's proxy puts them on lo, as kube-proxy's IPVS
// mode does on kube-ipvs0) with arp_ignore 0 makes two MACs answer for an
// address another node owns; its speaker says so on the Node (Warning
// KernelAnswersARP naming the interfaces and the setting), and says so
// again (Normal KernelARPResolved) once arp_ignore is back to 1.
func TestL2KernelARP(t *testing.T) {
	requireNetnsLab(t, "its proxy puts Service addresses on the nodes' lo")
	if len(drv.NodeNames()) < 2 {
		t.Skip("needs a node that does not own the address")
	}
	start := time.Now().Add(-time.Second)
	name := "l2-kernel-arp"
	newService(t, name, family(lab.IPv4))
	ip := waitIPs(t, name, 1)[0]
	owner := waitOwner(t, name, ip, true, 20*time.Second)
	other := drv.NodeNames()[0]
	if other == owner {
		other = drv.NodeNames()[1]
	}
	ctx := ctxT(t)
	out, err := drv.Exec(ctx, other, "ip", "-4", "addr", "show", "dev", "lo")
	if err != nil || !strings.Contains(string(out), " "+ip.String()+"/32") {
		t.Fatalf("%s is not on %s's lo (the lab's proxy puts it there): %v\n%s", ip, other, err, out)
	}

	settings := []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.eth0.arp_ignore"}
	set := func(v int) {
		for _, s := range settings {
			if _, err := drv.Exec(context.Background(), other, "sysctl", "-q", "-w", fmt.Sprintf("%s=%d", s, v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(0)
	t.Cleanup(func() { set(1) })
	eventually(t, 10*time.Second, fmt.Sprintf("the MACs of %s and %s answer ARP for %s", owner, other, ip), func() (bool, string) {
		macs, err := lab.ARPOwners(ctx, drv, lab.HostL2Client, ip)
		if err != nil {
			return false, err.Error()
		}
		var nodes []string
		for _, m := range macs {
			nodes = append(nodes, macNode[m])
		}
		slices.Sort(nodes)
		want := []string{owner, other}
		slices.Sort(want)
		return slices.Equal(nodes, want), fmt.Sprintf("%v answer", nodes)
	})
	// A new Service makes a pass, and the pass a check.
	newService(t, name+"-2", family(lab.IPv4))
	waitIPs(t, name+"-2", 1)
	warning := waitNodeEvent(t, other, "KernelAnswersARP", start, 20*time.Second)
	for _, want := range []string{"answered on eth0 (arp_ignore 0)", "addresses on lo", "strictARP"} {
		if !strings.Contains(warning, want) {
			t.Errorf("KernelAnswersARP %q: want %q in it", warning, want)
		}
	}
	if got := nodeEvents(t, "KernelAnswersARP", start); len(got) != 1 {
		t.Errorf("KernelAnswersARP events %v: want one, for %s only", got, other)
	}

	set(1)
	if err := deleteAndWait(ctx, getService(t, name+"-2")); err != nil {
		t.Fatal(err)
	}
	waitNodeEvent(t, other, "KernelARPResolved", start, 45*time.Second)
	if _, err := macOwner(ctx, ip); err != nil {
		t.Errorf("with arp_ignore 1 again: %v", err)
	}
}

// nodeEvents returns the events of reason since start, by node, as
// "node: message".
func nodeEvents(t *testing.T, reason string, since time.Time) []string {
	t.Helper()
	var out []string
	for _, e := range eventsAbout(t, "default", "Node", "", reason) {
		when := e.LastTimestamp.Time
		if e.Series != nil {
			when = e.Series.LastObservedTime.Time
		}
		if !when.Before(since) {
			out = append(out, e.InvolvedObject.Name+": "+e.Message)
		}
	}
	slices.Sort(out)
	return out
}

// waitNodeEvent waits for an event of reason about node since start and
// returns its message.
func waitNodeEvent(t *testing.T, node, reason string, since time.Time, d time.Duration) string {
	t.Helper()
	var msg string
	eventually(t, d, fmt.Sprintf("a %s event on Node %s", reason, node), func() (bool, string) {
		for _, e := range nodeEvents(t, reason, since) {
			if m, ok := strings.CutPrefix(e, node+": "); ok {
				msg = m
				return true, ""
			}
		}
		return false, "none yet"
	})
	return msg
}
