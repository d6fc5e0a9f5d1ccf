package ndp

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
		"ndp-responder": nstest.ResponderHelper(func(log logr.Logger, m *metrics.L2, onConflict func(Conflict)) nstest.Responder {
			return New(Options{Log: log, Metrics: m, GratuitousInterval: 50 * time.Millisecond, OnConflict: onConflict})
		}),
	}))
}

// lab is a node namespace (the responder, on its eth0) and a client
// namespace (eth0) on one veth link, with the node sysctls of the lab
// notes. The VIPs are on the node's lo, as the speaker puts them.
type lab struct {
	node, client *nstest.NS
	nodeMAC      string
	responder    *nstest.Helper
}

const (
	nodeAddr   = "fd00:31:250::1"
	clientAddr = "fd00:31:250::2"
	labVIP1    = "fd00:31:250::10"
	labVIP2    = "fd00:31:250::11"
	labFakeMAC = "02:00:00:00:00:99"
)

func newLab(t *testing.T) *lab {
	nstest.Require(t, "ping", "tcpdump", "sysctl")
	l := &lab{node: nstest.New(t, "node"), client: nstest.New(t, "client")}
	for _, ns := range []*nstest.NS{l.node, l.client} {
		// No duplicate address detection on the link-local addresses the
		// veths get, so the link is usable at once.
		ns.Sysctl(t, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	l.node.Sysctl(t, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1")
	for _, vip := range []string{labVIP1, labVIP2} {
		l.node.Run(t, "ip", "-6", "addr", "add", vip+"/128", "dev", "lo", "nodad")
	}
	l.link(t)
	l.responder = l.node.StartHelper(t, "ndp-responder")
	return l
}

// link (re)creates the veth pair and its addresses.
func (l *lab) link(t *testing.T) {
	nstest.Veth(t, l.node, "eth0", l.client, "eth0")
	l.node.Run(t, "ip", "-6", "addr", "add", nodeAddr+"/64", "dev", "eth0", "nodad")
	l.client.Run(t, "ip", "-6", "addr", "add", clientAddr+"/64", "dev", "eth0", "nodad")
	l.nodeMAC = l.node.MAC(t, "eth0")
}

// neigh returns the client's neighbour entry for ip ("" if none).
func (l *lab) neigh(t *testing.T, ip string) string {
	return strings.TrimSpace(l.client.Run(t, "ip", "-6", "neigh", "show", ip, "dev", "eth0"))
}

// resolves pings ip from the client and reports whether the client's
// neighbour entry then has the node's MAC.
func (l *lab) resolves(t *testing.T, ip string) bool {
	_, err := l.client.Try("ping", "-6", "-c", "1", "-W", "2", ip)
	return err == nil && strings.Contains(l.neigh(t, ip), "lladdr "+l.nodeMAC)
}

func TestNetnsNDP(t *testing.T) {
	l := newLab(t)
	l.responder.Do("reconcile eth0=" + labVIP1)
	l.responder.WaitAnnounced(1, 10*time.Second)

	t.Run("solicitation answered with the node's MAC", func(t *testing.T) {
		before := l.responder.Metrics()
		if !l.resolves(t, labVIP1) {
			t.Fatalf("client neighbour entry %q, want lladdr %s", l.neigh(t, labVIP1), l.nodeMAC)
		}
		if m := l.responder.Metrics(); m.Requests <= before.Requests || m.Responses <= before.Responses {
			t.Fatalf("metrics %+v -> %+v: want a request and a response more", before, m)
		}
	})

	t.Run("unicast probe answered", func(t *testing.T) {
		// Neighbour unreachability detection probes the VIP itself, unicast
		// to the cached MAC, not through the solicited-node group.
		l.client.Sysctl(t, "net.ipv6.neigh.eth0.delay_first_probe_time=1")
		l.client.Run(t, "ip", "-6", "neigh", "replace", labVIP1, "lladdr", l.nodeMAC, "dev", "eth0", "nud", "stale")
		l.client.Run(t, "ping", "-6", "-c", "1", "-W", "2", labVIP1)
		if !nstest.Eventually(5*time.Second, func() bool { return strings.Contains(l.neigh(t, labVIP1), "REACHABLE") }) {
			t.Fatalf("probe not answered: entry %q", l.neigh(t, labVIP1))
		}
	})

	t.Run("duplicate address detection defended", func(t *testing.T) {
		l.client.Sysctl(t, "net.ipv6.conf.eth0.accept_dad=1", "net.ipv6.conf.eth0.dad_transmits=1")
		l.client.Run(t, "ip", "-6", "addr", "add", labVIP1+"/128", "dev", "eth0")
		defer l.client.Run(t, "ip", "-6", "addr", "del", labVIP1+"/128", "dev", "eth0")
		show := func() string { return l.client.Run(t, "ip", "-6", "addr", "show", "dev", "eth0", "to", labVIP1+"/128") }
		if !nstest.Eventually(5*time.Second, func() bool { return strings.Contains(show(), "dadfailed") }) {
			t.Fatalf("client's duplicate address detection did not fail:\n%s", show())
		}
		// Reported as a probe, its MAC unknown.
		if got, want := l.responder.Do("conflicts"), labVIP1+"  eth0 probe=true"; got != want {
			t.Errorf("conflicts %q, want %q", got, want)
		}
	})

	t.Run("unsolicited advertisements on add", func(t *testing.T) {
		// An existing entry with another MAC: the announcement overrides it.
		l.client.Run(t, "ip", "-6", "neigh", "replace", labVIP2, "lladdr", labFakeMAC, "dev", "eth0", "nud", "stale")
		dump := l.client.Start(t, "tcpdump", "-l", "-nn", "-v", "-c", "3", "-i", "eth0",
			"icmp6 and ip6[40] == 136 and ip6 dst ff02::1")
		if !dump.WaitOutput("listening on", 5*time.Second) {
			t.Fatalf("tcpdump did not start: %s", dump.Output())
		}
		before := l.responder.Metrics()
		l.responder.Do("reconcile eth0=" + labVIP1 + "," + labVIP2)
		if !dump.Wait(5 * time.Second) {
			t.Fatalf("want 3 unsolicited advertisements, tcpdump saw:\n%s", dump.Output())
		}
		out := dump.Output()
		if n := strings.Count(out, "tgt is "+labVIP2); n != 3 {
			t.Errorf("advertisements for %s: %d, want 3:\n%s", labVIP2, n, out)
		}
		if n := strings.Count(out, "Flags [override]"); n != 3 {
			t.Errorf("advertisements with only the override flag: %d, want 3:\n%s", n, out)
		}
		if n := strings.Count(out, "link-address option (2), length 8 (1): "+l.nodeMAC); n != 3 {
			t.Errorf("advertisements with target link-layer address %s: %d, want 3:\n%s", l.nodeMAC, n, out)
		}
		if n := l.neigh(t, labVIP2); !strings.Contains(n, "lladdr "+l.nodeMAC) {
			t.Errorf("client entry %q not updated to %s", n, l.nodeMAC)
		}
		if m := l.responder.Metrics(); m.Gratuitous-before.Gratuitous != 3 || m.Announced != 2 {
			t.Errorf("metrics %+v -> %+v: want 3 gratuitous more, 2 announced", before, m)
		}
	})

	t.Run("removed address not answered", func(t *testing.T) {
		l.responder.Do("reconcile eth0=" + labVIP2)
		before := l.responder.Metrics()
		l.client.Run(t, "ip", "-6", "neigh", "flush", "dev", "eth0")
		if l.resolves(t, labVIP1) || strings.Contains(l.neigh(t, labVIP1), "lladdr") {
			t.Fatalf("%s still resolves after removal: %q", labVIP1, l.neigh(t, labVIP1))
		}
		// Solicitations for addresses not answered are not counted either.
		if m := l.responder.Metrics(); m.Requests != before.Requests || m.Responses != before.Responses || m.Announced != 1 {
			t.Fatalf("metrics %+v -> %+v: want no request counted, no response, 1 announced", before, m)
		}
		if !l.resolves(t, labVIP2) {
			t.Fatalf("%s no longer resolves: %q", labVIP2, l.neigh(t, labVIP2))
		}
	})

	t.Run("interface re-created", func(t *testing.T) {
		l.node.Run(t, "ip", "link", "del", "eth0")
		l.responder.WaitAnnounced(0, 5*time.Second)
		before := l.responder.Metrics()
		l.link(t)
		// No Reconcile: the responder sees the interface come back.
		l.responder.WaitAnnounced(1, 10*time.Second)
		if !nstest.Eventually(5*time.Second, func() bool { return l.responder.Metrics().Gratuitous >= before.Gratuitous+3 }) {
			t.Errorf("no announcements after reopening: %+v -> %+v", before, l.responder.Metrics())
		}
		if !l.resolves(t, labVIP2) {
			t.Fatalf("%s does not resolve after the interface came back: %q", labVIP2, l.neigh(t, labVIP2))
		}
	})

	t.Run("interface down and up", func(t *testing.T) {
		l.node.Run(t, "ip", "link", "set", "eth0", "down")
		l.responder.WaitAnnounced(0, 5*time.Second)
		before := l.responder.Metrics()
		l.node.Run(t, "ip", "link", "set", "eth0", "up")
		l.responder.WaitAnnounced(1, 10*time.Second)
		// The address was held all along and the MAC is the same: the
		// neighbours' caches are right, nothing is announced (a node
		// that was cut off must not pull clients back; see
		// responder.Engine.interrupted). Solicitations are answered.
		time.Sleep(time.Second)
		if after := l.responder.Metrics(); after.Gratuitous != before.Gratuitous {
			t.Errorf("announcements after the link came up with the address held throughout: %+v -> %+v", before, after)
		}
		l.client.Run(t, "ip", "-6", "neigh", "flush", "dev", "eth0")
		if !l.resolves(t, labVIP2) {
			t.Fatalf("%s does not resolve after the link came up: %q", labVIP2, l.neigh(t, labVIP2))
		}
	})
}

func TestNetnsNDPPermission(t *testing.T) {
	nstest.Require(t, "setpriv")
	node := nstest.New(t, "node")
	peer := nstest.New(t, "peer")
	node.Sysctl(t, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	nstest.Veth(t, node, "eth0", peer, "eth0")
	// Wait for the link-local address so the responder tries to open.
	if !nstest.Eventually(5*time.Second, func() bool {
		out, _ := node.Try("ip", "-6", "addr", "show", "dev", "eth0", "scope", "link", "-tentative")
		return strings.Contains(out, "fe80")
	}) {
		t.Fatal("no link-local address on eth0")
	}
	h := node.StartHelper(t, "ndp-responder", "setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", "--")
	h.Do("reconcile eth0=" + labVIP1)
	reply := h.Do("wait")
	if !strings.HasPrefix(reply, "permission=true ") || !strings.Contains(reply, "CAP_NET_RAW") {
		t.Fatalf("Run without CAP_NET_RAW returned %q, want an error wrapping ErrPermission that names CAP_NET_RAW", reply)
	}
}

// TestNetnsNDPPerInterface checks that each interface answers only for its
// own addresses although the sockets are not bound to their interface: a
// node with eth0 and eth1, a client on each, and two addresses that share
// their solicited-node group, one per interface.
func TestNetnsNDPPerInterface(t *testing.T) {
	const vipB = "fd00:31:251::10" // same solicited-node group as labVIP1
	l := newLab(t)
	client2 := nstest.New(t, "client2")
	client2.Sysctl(t, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	nstest.Veth(t, l.node, "eth1", client2, "eth0")
	client2.Run(t, "ip", "-6", "addr", "add", "fd00:31:251::2/64", "dev", "eth0", "nodad")
	l.node.Run(t, "ip", "-6", "addr", "add", "fd00:31:251::1/64", "dev", "eth1", "nodad")
	l.node.Run(t, "ip", "-6", "addr", "add", vipB+"/128", "dev", "lo", "nodad")
	// Each client also takes the other interface's VIP for on-link.
	l.client.Run(t, "ip", "-6", "route", "add", vipB+"/128", "dev", "eth0")
	client2.Run(t, "ip", "-6", "route", "add", labVIP1+"/128", "dev", "eth0")
	mac1 := l.node.MAC(t, "eth1")
	l.responder.Do("reconcile eth0=" + labVIP1 + " eth1=" + vipB)
	l.responder.WaitAnnounced(2, 10*time.Second)

	for _, c := range []struct {
		name   string
		client *nstest.NS
		ip     string
		mac    string // "" for no answer
	}{
		{"eth0 answers for its address", l.client, labVIP1, l.nodeMAC},
		{"eth0 does not answer for eth1's", l.client, vipB, ""},
		{"eth1 answers for its address", client2, vipB, mac1},
		{"eth1 does not answer for eth0's", client2, labVIP1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _ = c.client.Try("ping", "-6", "-c", "1", "-W", "2", c.ip)
			entry := strings.TrimSpace(c.client.Run(t, "ip", "-6", "neigh", "show", c.ip, "dev", "eth0"))
			if c.mac == "" {
				if strings.Contains(entry, "lladdr") {
					t.Fatalf("want no answer, entry %q", entry)
				}
				return
			}
			if !strings.Contains(entry, "lladdr "+c.mac) {
				t.Fatalf("entry %q, want lladdr %s", entry, c.mac)
			}
		})
	}
}
