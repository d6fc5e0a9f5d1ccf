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

// TestL2AddressConflict: a host on the segment that claims a Service's
// address is reported on the Service (Warning AddressConflict, naming its
// MAC): one that probes for the address at once (and arping -D hears that
// it is in use), one that uses it (sends ARP from it) within seconds.
func TestL2AddressConflict(t *testing.T) {
	requireNetnsLab(t, "the test puts a Service address on the L2 client")
	ctx := ctxT(t)
	out, err := drv.Exec(ctx, lab.HostL2Client, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		t.Fatal(err)
	}
	clientMAC := strings.TrimSpace(string(out))

	t.Run("probe", func(t *testing.T) {
		name := "l2-conflict-probe"
		newService(t, name, family(lab.IPv4))
		ip := waitIPs(t, name, 1)[0]
		owner := waitOwner(t, name, ip, true, 20*time.Second)
		// arping -D exits 1 when the address is in use.
		if out, err := drv.Exec(ctx, lab.HostL2Client, "arping", "-D", "-c", "1", "-w", "2", "-I", "eth0", ip.String()); err == nil {
			t.Errorf("arping -D %s: the address looks free:\n%s", ip, out)
		}
		want := fmt.Sprintf("a host with MAC %s on eth0 asked whether %s is free, which node %s announces", clientMAC, ip, owner)
		waitServiceEvent(t, name, "AddressConflict", want, 10*time.Second)
	})

	t.Run("use", func(t *testing.T) {
		name := "l2-conflict-use"
		newService(t, name, family(lab.IPv4))
		ip := waitIPs(t, name, 1)[0]
		owner := waitOwner(t, name, ip, true, 20*time.Second)
		nodeIP, err := drv.NodeAddress(owner, lab.IPv4)
		if err != nil {
			t.Fatal(err)
		}
		// A host configured with the address by mistake: whatever it
		// asks, its ARP requests carry it.
		if _, err := drv.Exec(ctx, lab.HostL2Client, "ip", "addr", "add", ip.String()+"/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := drv.Exec(context.Background(), lab.HostL2Client, "ip", "addr", "del", ip.String()+"/32", "dev", "eth0"); err != nil {
				t.Errorf("remove %s from the L2 client: %v", ip, err)
			}
		})
		// (The node's kernel does not answer: it has the sender address
		// on lo. The requests are what counts.)
		out, _ := drv.Exec(ctx, lab.HostL2Client, "arping", "-c", "4", "-w", "5", "-I", "eth0", "-s", ip.String(), nodeIP.String())
		if !strings.Contains(string(out), "Sent 4 probes") {
			t.Fatalf("arping %s from %s:\n%s", nodeIP, ip, out)
		}
		want := fmt.Sprintf("a host with MAC %s on eth0 uses %s, which node %s announces", clientMAC, ip, owner)
		waitServiceEvent(t, name, "AddressConflict", want, 10*time.Second)
	})
}

// serviceEvents returns the messages of the Service's events of reason.
func serviceEvents(t *testing.T, svcName, reason string) []string {
	t.Helper()
	var out []string
	for _, e := range eventsAbout(t, testNS, "Service", svcName, reason) {
		out = append(out, e.Message)
	}
	slices.Sort(out)
	return out
}

// waitServiceEvent waits for an event of reason on the Service whose
// message starts with prefix.
func waitServiceEvent(t *testing.T, svcName, reason, prefix string, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("a %s event on Service %s: %q", reason, svcName, prefix), func() (bool, string) {
		got := serviceEvents(t, svcName, reason)
		for _, m := range got {
			if strings.HasPrefix(m, prefix) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%q", got)
	})
}
