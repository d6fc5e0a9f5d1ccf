//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
)

var families = []lab.Family{lab.IPv4, lab.IPv6}

// TestL2 checks layer-2 announcement per family: the address comes from
// the suite's pool, exactly one node's MAC answers ARP/NDP for it, that
// node's ServiceL2Status says so, and curl from the L2 client and from the
// routed client reaches that node's backend.
func TestL2(t *testing.T) {
	requireLab(t)
	for _, fam := range families {
		t.Run(string(fam), func(t *testing.T) {
			name := "l2-" + string(fam)
			newService(t, name, family(fam))
			ip := waitIPs(t, name, 1)[0]
			if lab.FamilyOf(ip) != fam || !plan.Main.Contains(ip) {
				t.Fatalf("EXTERNAL-IP %s: want an %s address of pool %s", ip, fam, poolMain)
			}
			requireSpeaker(t)
			owner := waitOwner(t, name, ip, true, 20*time.Second)
			ctx := ctxT(t)
			mac, err := drv.NodeMAC(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s is answered by %s (%s)", ip, owner, mac)
			waitCurl(t, lab.HostL2Client, ip, 80, owner, 10*time.Second)
			waitCurl(t, lab.HostClient, ip, 80, owner, 10*time.Second)
		})
	}
}

// failure is one way a node fails, and how to repair it.
type failure struct {
	name   string
	fail   func(ctx context.Context, node string) error
	repair func(ctx context.Context, node string) error
}

var failures = []failure{
	{
		name:   "sigkill",
		fail:   func(ctx context.Context, n string) error { return drv.SignalSpeaker(ctx, n, syscall.SIGKILL) },
		repair: func(ctx context.Context, n string) error { return drv.RestartSpeaker(ctx, n) },
	},
	{
		// Silent: the process is frozen, its sockets stay open.
		name: "sigstop",
		fail: func(ctx context.Context, n string) error { return drv.SignalSpeaker(ctx, n, syscall.SIGSTOP) },
		repair: func(ctx context.Context, n string) error {
			return drv.SignalSpeaker(ctx, n, syscall.SIGCONT)
		},
	},
	{
		// Silent: the whole node drops off the segment.
		name:   "linkdown",
		fail:   func(ctx context.Context, n string) error { return drv.LinkDown(ctx, n) },
		repair: func(ctx context.Context, n string) error { return drv.LinkUp(ctx, n) },
	},
}

// TestL2Failover fails the owner of an address in each way and measures
// the time until curl from the L2 client reaches a new owner (the client
// keeps its neighbour entry, so the new owner must tell it).
func TestL2Failover(t *testing.T) {
	requireLab(t)
	requireSpeaker(t)
	if len(drv.NodeNames()) < 2 {
		t.Skip("failover needs two nodes")
	}
	for _, f := range failures {
		for _, fam := range families {
			t.Run(f.name+"/"+string(fam), func(t *testing.T) {
				name := fmt.Sprintf("failover-%s-%s", f.name, fam)
				newService(t, name, family(fam))
				ip := waitIPs(t, name, 1)[0]
				old := waitOwner(t, name, ip, true, 20*time.Second)
				// The client learns the owner's MAC, as a real client would.
				waitCurl(t, lab.HostL2Client, ip, 80, old, 10*time.Second)

				ctx := ctxT(t)
				if err := f.fail(ctx, old); err != nil {
					t.Fatalf("%s %s: %v", f.name, old, err)
				}
				repaired := false
				repair := func() {
					if repaired {
						return
					}
					repaired = true
					if err := f.repair(context.Background(), old); err != nil {
						t.Errorf("repair %s after %s: %v", old, f.name, err)
					}
					waitSpeakersUp(t)
				}
				t.Cleanup(repair)

				newOwner, took := waitNewOwner(t, ip, old, 30*time.Second)
				figure(t, fmt.Sprintf("l2-failover-%s-%s", f.name, fam), took)
				t.Logf("%s moved from %s to %s; curl from the L2 client answered after %s", ip, old, newOwner, took.Round(time.Millisecond))
				// The network and the status agree on the new owner.
				if got := waitOwner(t, name, ip, false, 10*time.Second); got != newOwner {
					t.Fatalf("curl reaches %s but %s answers ARP/NDP", newOwner, got)
				}
				repair()
			})
		}
	}
}

// waitNewOwner polls curl from the L2 client (short timeouts) until a node
// other than old answers, and returns it with the time taken.
func waitNewOwner(t *testing.T, ip netip.Addr, old string, d time.Duration) (string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	last := ""
	for time.Since(t0) < d {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		out, err := drv.Exec(ctx, lab.HostL2Client, "curl", "-s", "-g", "--max-time", "0.5", lab.URL(ip, 80))
		cancel()
		body := strings.TrimSpace(string(out))
		if err == nil && body != "" && body != old {
			return body, time.Since(t0)
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "answered " + body
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no node but %s answered %s within %s (last: %s)", old, ip, d, last)
	return "", 0
}

// waitSpeakersUp waits until every node's speaker answers on its health
// port again (after a repair).
func waitSpeakersUp(t *testing.T) {
	t.Helper()
	l, ok := drv.(*lab.Lab)
	if !ok {
		return // the kind driver's repairs wait for readiness themselves
	}
	for _, n := range l.NodeNames() {
		a, _ := l.NodeAddress(n, lab.IPv4)
		url := fmt.Sprintf("http://%s:%d/", a, lab.HealthPort)
		eventually(t, 30*time.Second, "speaker on "+n+" is up", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			out, _ := l.Exec(ctx, n, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url)
			code := strings.TrimSpace(string(out))
			return code != "" && code != "000", "no answer on " + url
		})
	}
}
