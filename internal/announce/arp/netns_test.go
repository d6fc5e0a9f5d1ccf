package arp

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/internal/announce/internal/nstest"
	"github.com/herald-lb/herald/internal/metrics"
)

func TestMain(m *testing.M) {
	os.Exit(nstest.Main(m, map[string]func() int{
		"arp-responder": nstest.ResponderHelper(func(log logr.Logger, m *metrics.L2, onConflict func(Conflict)) nstest.Responder {
			return New(Options{Log: log, Metrics: m, GratuitousInterval: 50 * time.Millisecond, OnConflict: onConflict})
		}),
	}))
}

// lab is a node namespace (the responder, on its eth0) and a client
// namespace (eth0) on one veth link, with the node sysctls of the lab
// notes. The VIPs are on the node's lo, as the speaker puts them; with
// arp_ignore=1 the node's kernel does not answer ARP for them on eth0.
type lab struct {
	node, client *nstest.NS
	nodeMAC      string
	responder    *nstest.Helper
}

const (
	nodeAddr   = "172.31.250.1"
	clientAddr = "172.31.250.2"
	labVIP1    = "172.31.250.10"
	labVIP2    = "172.31.250.11"
	labFakeMAC = "02:00:00:00:00:99"
)

func newLab(t *testing.T) *lab {
	nstest.Require(t, "arping", "tcpdump", "sysctl")
	l := &lab{node: nstest.New(t, "node"), client: nstest.New(t, "client")}
	l.node.Sysctl(t, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1")
	for _, vip := range []string{labVIP1, labVIP2} {
		l.node.Run(t, "ip", "addr", "add", vip+"/32", "dev", "lo")
	}
	l.link(t)
	l.responder = l.node.StartHelper(t, "arp-responder")
	return l
}

// link (re)creates the veth pair and its addresses.
func (l *lab) link(t *testing.T) {
	nstest.Veth(t, l.node, "eth0", l.client, "eth0")
	l.node.Run(t, "ip", "addr", "add", nodeAddr+"/24", "dev", "eth0")
	l.client.Run(t, "ip", "addr", "add", clientAddr+"/24", "dev", "eth0")
	l.nodeMAC = l.node.MAC(t, "eth0")
}

// arping runs arping from the client with extra flags and returns its
// output and whether it exited 0.
func (l *lab) arping(ip string, flags ...string) (string, bool) {
	out, err := l.client.Try(append(append([]string{"arping", "-I", "eth0"}, flags...), ip)...)
	return out, err == nil
}

// answeredBy reports whether arping's output shows count replies, all from
// the node's MAC.
func (l *lab) answeredBy(out string, count int) bool {
	mac := "[" + strings.ToUpper(l.nodeMAC) + "]"
	return strings.Count(out, mac) == count && strings.Count(out, "reply from") == count
}

// neigh returns the client's neighbour entry for ip ("" if none).
func (l *lab) neigh(t *testing.T, ip string) string {
	return strings.TrimSpace(l.client.Run(t, "ip", "neigh", "show", ip, "dev", "eth0"))
}

func TestNetnsARP(t *testing.T) {
	l := newLab(t)
	l.responder.Do("reconcile eth0=" + labVIP1)
	l.responder.WaitAnnounced(1, 10*time.Second)

	t.Run("request answered with the node's MAC", func(t *testing.T) {
		before := l.responder.Metrics()
		// The first request is broadcast; arping sends the second unicast
		// to the MAC it learned, as neighbour probes do.
		out, ok := l.arping(labVIP1, "-c", "2", "-w", "5")
		if !ok || !l.answeredBy(out, 2) {
			t.Fatalf("arping %s: want 2 replies from %s:\n%s", labVIP1, l.nodeMAC, out)
		}
		if m := l.responder.Metrics(); m.Requests-before.Requests != 2 || m.Responses-before.Responses != 2 {
			t.Fatalf("metrics %+v -> %+v: want 2 requests and 2 responses more", before, m)
		}
	})

	t.Run("probe for the address defended", func(t *testing.T) {
		// Duplicate address detection (RFC 5227 probe, sender IP 0.0.0.0):
		// arping -D exits 1 when the address is in use.
		out, free := l.arping(labVIP1, "-D", "-c", "1", "-w", "2")
		if free || !l.answeredBy(out, 1) {
			t.Fatalf("arping -D %s: want the address in use, answered by %s:\n%s", labVIP1, l.nodeMAC, out)
		}
	})

	t.Run("gratuitous ARP on add, both forms", func(t *testing.T) {
		// With arp_accept=0 a gratuitous ARP updates only an existing entry.
		l.client.Run(t, "ip", "neigh", "replace", labVIP2, "lladdr", labFakeMAC, "dev", "eth0", "nud", "stale")
		dump := l.client.Start(t, "tcpdump", "-l", "-nn", "-e", "-c", "6", "-i", "eth0", "arp and host "+labVIP2)
		if !dump.WaitOutput("listening on", 5*time.Second) {
			t.Fatalf("tcpdump did not start: %s", dump.Output())
		}
		before := l.responder.Metrics()
		l.responder.Do("reconcile eth0=" + labVIP1 + "," + labVIP2)
		if !dump.Wait(5 * time.Second) {
			t.Fatalf("want 6 gratuitous ARP packets, tcpdump saw:\n%s", dump.Output())
		}
		out := dump.Output()
		for _, want := range []string{
			l.nodeMAC + " > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has " + labVIP2 + " tell " + labVIP2 + ", length 28",
			l.nodeMAC + " > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Reply " + labVIP2 + " is-at " + l.nodeMAC + ", length 28",
		} {
			if n := strings.Count(out, want); n != 3 {
				t.Errorf("%d packets %q, want 3:\n%s", n, want, out)
			}
		}
		if n := l.neigh(t, labVIP2); !strings.Contains(n, "lladdr "+l.nodeMAC) {
			t.Errorf("client entry %q not updated to %s", n, l.nodeMAC)
		}
		if m := l.responder.Metrics(); m.Gratuitous-before.Gratuitous != 6 || m.Announced != 2 {
			t.Errorf("metrics %+v -> %+v: want 6 gratuitous more, 2 announced", before, m)
		}
	})

	t.Run("removed address not answered", func(t *testing.T) {
		l.responder.Do("reconcile eth0=" + labVIP2)
		before := l.responder.Metrics()
		if out, ok := l.arping(labVIP1, "-c", "2", "-w", "3"); ok || !strings.Contains(out, "Received 0 response(s)") {
			t.Fatalf("arping %s after removal: want no reply:\n%s", labVIP1, out)
		}
		// Requests for addresses not answered are not counted either.
		if m := l.responder.Metrics(); m.Requests != before.Requests || m.Responses != before.Responses || m.Announced != 1 {
			t.Fatalf("metrics %+v -> %+v: want no request counted, no response, 1 announced", before, m)
		}
		if out, ok := l.arping(labVIP2, "-c", "1", "-w", "3"); !ok || !l.answeredBy(out, 1) {
			t.Fatalf("arping %s: want a reply from %s:\n%s", labVIP2, l.nodeMAC, out)
		}
	})

	t.Run("interface re-created", func(t *testing.T) {
		l.node.Run(t, "ip", "link", "del", "eth0")
		l.responder.WaitAnnounced(0, 5*time.Second)
		before := l.responder.Metrics()
		l.link(t)
		// No Reconcile: the responder sees the interface come back.
		l.responder.WaitAnnounced(1, 10*time.Second)
		if !nstest.Eventually(5*time.Second, func() bool { return l.responder.Metrics().Gratuitous >= before.Gratuitous+6 }) {
			t.Errorf("no announcements after reopening: %+v -> %+v", before, l.responder.Metrics())
		}
		if out, ok := l.arping(labVIP2, "-c", "1", "-w", "3"); !ok || !l.answeredBy(out, 1) {
			t.Fatalf("arping %s after the interface came back: want a reply from %s:\n%s", labVIP2, l.nodeMAC, out)
		}
	})

	t.Run("interface down and up", func(t *testing.T) {
		l.node.Run(t, "ip", "link", "set", "eth0", "down")
		l.responder.WaitAnnounced(0, 5*time.Second)
		before := l.responder.Metrics()
		l.node.Run(t, "ip", "link", "set", "eth0", "up")
		l.responder.WaitAnnounced(1, 10*time.Second)
		// Held all along on the same MAC: answered, not announced (see
		// responder.Engine.interrupted).
		time.Sleep(time.Second)
		if after := l.responder.Metrics(); after.Gratuitous != before.Gratuitous {
			t.Errorf("announcements after the link came up with the address held throughout: %+v -> %+v", before, after)
		}
		if out, ok := l.arping(labVIP2, "-c", "1", "-w", "3"); !ok || !l.answeredBy(out, 1) {
			t.Fatalf("arping %s after the link came up: want a reply from %s:\n%s", labVIP2, l.nodeMAC, out)
		}
	})
}

func TestNetnsARPPermission(t *testing.T) {
	nstest.Require(t, "setpriv")
	node := nstest.New(t, "node")
	peer := nstest.New(t, "peer")
	nstest.Veth(t, node, "eth0", peer, "eth0")
	h := node.StartHelper(t, "arp-responder", "setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", "--")
	h.Do("reconcile eth0=" + labVIP1)
	reply := h.Do("wait")
	if !strings.HasPrefix(reply, "permission=true ") || !strings.Contains(reply, "CAP_NET_RAW") {
		t.Fatalf("Run without CAP_NET_RAW returned %q, want an error wrapping ErrPermission that names CAP_NET_RAW", reply)
	}
	t.Logf("Run returned: %s", strings.TrimPrefix(reply, "permission=true "))
}

// TestNetnsARPPerInterface checks that each interface answers only for its
// own addresses: a node with eth0 and eth1, a client on each.
func TestNetnsARPPerInterface(t *testing.T) {
	l := newLab(t)
	client2 := nstest.New(t, "client2")
	nstest.Veth(t, l.node, "eth1", client2, "eth0")
	client2.Run(t, "ip", "addr", "add", "172.31.250.3/24", "dev", "eth0")
	mac1 := l.node.MAC(t, "eth1")
	l.responder.Do("reconcile eth0=" + labVIP1 + " eth1=" + labVIP2)
	l.responder.WaitAnnounced(2, 10*time.Second)

	arping := func(ns *nstest.NS, ip string) string {
		out, _ := ns.Try("arping", "-I", "eth0", "-c", "1", "-w", "2", ip)
		return out
	}
	for _, c := range []struct {
		name   string
		client *nstest.NS
		ip     string
		mac    string // "" for no answer
	}{
		{"eth0 answers for its address", l.client, labVIP1, l.nodeMAC},
		{"eth0 does not answer for eth1's", l.client, labVIP2, ""},
		{"eth1 answers for its address", client2, labVIP2, mac1},
		{"eth1 does not answer for eth0's", client2, labVIP1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := arping(c.client, c.ip)
			if c.mac == "" {
				if !strings.Contains(out, "Received 0 response(s)") {
					t.Fatalf("want no reply:\n%s", out)
				}
				return
			}
			if !strings.Contains(out, "["+strings.ToUpper(c.mac)+"]") || !strings.Contains(out, "Received 1 response(s)") {
				t.Fatalf("want one reply from %s:\n%s", c.mac, out)
			}
		})
	}
}

// TestNetnsConflicts: other hosts claiming addresses the responder answers
// for, through real sockets. One gratuitous ARP (what the next owner sends
// in a handover) is not reported, a second one after conflictConfirm is;
// a host that keeps using an address (its requests carry it as sender
// address) is reported once conflictConfirm has passed; a probe for an
// address at once, and the prober is told that the address is in use.
func TestNetnsConflicts(t *testing.T) {
	const vip3 = "172.31.250.12"
	l := newLab(t)
	l.responder.Do("reconcile eth0=" + labVIP1 + "," + labVIP2 + "," + vip3)
	l.responder.WaitAnnounced(3, 10*time.Second)
	clientMAC := l.client.MAC(t, "eth0")
	// arping sends from an address only when the host has it.
	for _, vip := range []string{labVIP1, labVIP2} {
		l.client.Run(t, "ip", "addr", "add", vip+"/32", "dev", "eth0")
	}
	var want []string
	waitConflicts := func(add string) {
		t.Helper()
		want = append(want, add)
		var got string
		if !nstest.Eventually(5*time.Second, func() bool { got = l.responder.Do("conflicts"); return got == strings.Join(want, "; ") }) {
			t.Fatalf("conflicts %q, want %q", got, strings.Join(want, "; "))
		}
	}
	garp := func() {
		t.Helper()
		if out, _ := l.arping(labVIP1, "-U", "-c", "1"); !strings.Contains(out, "Sent 1 probes") {
			t.Fatalf("arping -U: %s", out)
		}
	}

	garp()
	time.Sleep(conflictConfirmForTest + 500*time.Millisecond)
	if got := l.responder.Do("conflicts"); got != "" {
		t.Fatalf("one gratuitous ARP reported: %q", got)
	}
	garp()
	waitConflicts(labVIP1 + " " + clientMAC + " eth0 probe=false")

	start := time.Now()
	l.arping(nodeAddr, "-s", labVIP2, "-c", "4", "-w", "5")
	waitConflicts(labVIP2 + " " + clientMAC + " eth0 probe=false")
	if d := time.Since(start); d < conflictConfirmForTest {
		t.Errorf("a host using the address reported after %s, before it was seen for %s", d, conflictConfirmForTest)
	}

	if out, free := l.arping(vip3, "-D", "-c", "1", "-w", "2"); free || !l.answeredBy(out, 1) {
		t.Fatalf("arping -D %s: want the address in use, answered by %s:\n%s", vip3, l.nodeMAC, out)
	}
	waitConflicts(vip3 + " " + clientMAC + " eth0 probe=true")
}

// conflictConfirmForTest is the engine's conflictConfirm (an internal
// package's constant).
const conflictConfirmForTest = 2 * time.Second
