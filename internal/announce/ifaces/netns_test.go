package ifaces_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/internal/nstest"
)

func TestMain(m *testing.M) {
	os.Exit(nstest.Main(m, map[string]func() int{"ifaces": helper}))
}

// helper answers "list" with List as JSON, "arpstate IFACE..." with
// ReadARPState as JSON, "watch" to start watching and
// "changed DURATION" to wait that long for a change.
func helper() int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var changes <-chan struct{}
	nstest.Serve(func(words []string) (string, error) {
		switch words[0] {
		case "list":
			list, err := ifaces.List()
			if err != nil {
				return "", err
			}
			b, err := json.Marshal(list)
			return string(b), err
		case "arpstate":
			st, err := ifaces.ReadARPState(words[1:])
			if err != nil {
				return "", err
			}
			b, err := json.Marshal(st)
			return string(b), err
		case "watch":
			var err error
			changes, err = ifaces.Watch(ctx)
			return "", err
		case "changed":
			if len(words) != 2 {
				return "", errors.New("want changed DURATION")
			}
			d, err := time.ParseDuration(words[1])
			if err != nil {
				return "", err
			}
			select {
			case _, ok := <-changes:
				if !ok {
					return "", errors.New("watch channel closed")
				}
				return "changed", nil
			case <-time.After(d):
				return "quiet", nil
			}
		}
		return "", errors.New("unknown command")
	})
	return 0
}

func TestNetnsList(t *testing.T) {
	nstest.Require(t, "sysctl")
	node := nstest.New(t, "node")
	peer := nstest.New(t, "peer")
	node.Sysctl(t, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")

	node.Run(t, "ip", "link", "add", "br0", "type", "bridge")
	node.Run(t, "ip", "link", "set", "br0", "up")
	node.Run(t, "ip", "addr", "add", "172.31.251.1/24", "dev", "br0")
	for i, name := range []string{"port0", "ll0", "v6g", "noarp0", "down0", "tent0"} {
		nstest.Veth(t, node, name, peer, "p"+string(rune('0'+i)))
	}
	node.Run(t, "ip", "link", "set", "port0", "master", "br0")
	node.Run(t, "ip", "-6", "addr", "add", "fd00:31:251::1/64", "dev", "v6g", "nodad")
	node.Run(t, "ip", "link", "set", "noarp0", "arp", "off")
	node.Run(t, "ip", "addr", "add", "172.31.252.1/24", "dev", "noarp0")
	node.Run(t, "ip", "link", "set", "down0", "down")
	node.Run(t, "ip", "addr", "add", "172.31.253.1/24", "dev", "down0")
	// Without carrier (its peer is down) duplicate address detection never
	// runs: the addresses stay tentative.
	node.Sysctl(t, "net.ipv6.conf.tent0.accept_dad=1")
	peer.Run(t, "ip", "link", "set", "p5", "down")
	node.Run(t, "ip", "-6", "addr", "add", "fd00:31:254::1/64", "dev", "tent0")

	h := node.StartHelper(t, "ifaces")
	var list []ifaces.Interface
	// The link-local addresses appear once the veths have carrier.
	if !nstest.Eventually(5*time.Second, func() bool {
		if err := json.Unmarshal([]byte(h.Do("list")), &list); err != nil {
			t.Fatal(err)
		}
		for _, i := range list {
			if i.Name == "ll0" {
				return i.HasIPv6LinkLocal
			}
		}
		return false
	}) {
		t.Fatalf("ll0 has no usable link-local address: %+v", list)
	}

	type summary struct {
		Up, LinkUp, Loopback, NoARP, IPv4, IPv6Global, IPv6LinkLocal bool
		Master                                                       string
	}
	got := map[string]summary{}
	for _, i := range list {
		got[i.Name] = summary{i.Up(), i.LinkUp(), i.Flags&(1<<2) != 0, i.NoARP, i.HasIPv4, i.HasIPv6Global, i.HasIPv6LinkLocal, i.Master}
		if i.Name == "br0" && (i.Index == 0 || len(i.MAC) != 6 || i.MTU == 0) {
			t.Errorf("br0: index %d, MAC %v, MTU %d; want all set", i.Index, i.MAC, i.MTU)
		}
	}
	want := map[string]summary{
		"lo":     {Up: true, LinkUp: true, Loopback: true, IPv4: true, IPv6Global: true},
		"br0":    {Up: true, LinkUp: true, IPv4: true, IPv6LinkLocal: true},
		"port0":  {Up: true, LinkUp: true, IPv6LinkLocal: true, Master: "br0"},
		"ll0":    {Up: true, LinkUp: true, IPv6LinkLocal: true},
		"v6g":    {Up: true, LinkUp: true, IPv6Global: true, IPv6LinkLocal: true},
		"noarp0": {Up: true, LinkUp: true, NoARP: true, IPv4: true, IPv6LinkLocal: true},
		"down0":  {IPv4: true},
		// Up, but no carrier: its peer is down. Its link-local address
		// came before accept_dad was set.
		"tent0": {Up: true, IPv6LinkLocal: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"br0", "down0", "v6g"}, sortedDefault(list)); diff != "" {
		t.Errorf("Default (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"port0", "down0", "br0"}, ifaces.Resolve(list, []string{"port0", "down0", "eth9", "br0", "port0"})); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
}

// sortedDefault is Default by name (indexes, hence list order, depend on
// creation order).
func sortedDefault(list []ifaces.Interface) []string {
	out := ifaces.Default(list)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if strings.Compare(out[j], out[i]) < 0 {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestNetnsWatch(t *testing.T) {
	nstest.Require(t)
	node := nstest.New(t, "node")
	peer := nstest.New(t, "peer")
	h := node.StartHelper(t, "ifaces")
	h.Do("watch")

	nstest.Veth(t, node, "eth0", peer, "eth0")
	if got := h.Do("changed 5s"); got != "changed" {
		t.Fatalf("after a link was added: %s, want changed", got)
	}
	// Drain what the link's creation and link-local address signalled
	// (the address comes once DAD is done, a second or two later).
	deadline := time.Now().Add(10 * time.Second)
	for !hasLinkLocal(t, h.Do("list"), "eth0") {
		if time.Now().After(deadline) {
			t.Fatal("eth0 got no usable link-local address")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for h.Do("changed 300ms") == "changed" {
	}
	node.Run(t, "ip", "addr", "add", "172.31.250.1/24", "dev", "eth0")
	if got := h.Do("changed 5s"); got != "changed" {
		t.Fatalf("after an address was added: %s, want changed", got)
	}
	for h.Do("changed 300ms") == "changed" {
	}
	// Addresses that change nothing List reports (as kube-proxy's IPVS
	// mode puts every Service address on an interface) signal nothing;
	// the last address of a kind going does.
	node.Run(t, "ip", "addr", "add", "172.31.251.1/32", "dev", "lo") // maybe lo's first
	for h.Do("changed 300ms") == "changed" {
	}
	for i := 2; i <= 50; i++ {
		node.Run(t, "ip", "addr", "add", fmt.Sprintf("172.31.251.%d/32", i), "dev", "lo")
	}
	node.Run(t, "ip", "addr", "add", "172.31.252.1/24", "dev", "eth0") // not a secondary: deleting .1 keeps it
	node.Run(t, "ip", "addr", "del", "172.31.250.1/24", "dev", "eth0")
	if got := h.Do("changed 500ms"); got != "quiet" {
		t.Fatalf("after addresses that change no interface's kinds: %s, want quiet", got)
	}
	node.Run(t, "ip", "addr", "del", "172.31.252.1/24", "dev", "eth0")
	if got := h.Do("changed 5s"); got != "changed" {
		t.Fatalf("after eth0's last IPv4 address went: %s, want changed", got)
	}
	node.Run(t, "ip", "addr", "add", "172.31.250.1/24", "dev", "eth0")
	for h.Do("changed 300ms") == "changed" {
	}
	// The carrier goes (the far end is set down): the speaker must hear
	// of it, since a node without a working link takes nothing over.
	peer.Run(t, "ip", "link", "set", "eth0", "down")
	if got := h.Do("changed 5s"); got != "changed" {
		t.Fatalf("after the carrier went: %s, want changed", got)
	}
}

// hasLinkLocal reports whether the List JSON says name has a usable
// link-local address.
func hasLinkLocal(t *testing.T, listJSON, name string) bool {
	t.Helper()
	var list []ifaces.Interface
	if err := json.Unmarshal([]byte(listJSON), &list); err != nil {
		t.Fatal(err)
	}
	for _, i := range list {
		if i.Name == name {
			return i.HasIPv6LinkLocal
		}
	}
	return false
}

// TestNetnsKernelARP checks ARPState.KernelAnswers against the kernel: for
// each arp_ignore level, arping from a peer for addresses on lo (global and
// host scope) and on the incoming interface must get an answer exactly when
// the model says the kernel answers, and the model must say what the
// kernel's documentation does.
func TestNetnsKernelARP(t *testing.T) {
	nstest.Require(t, "sysctl", "arping", "ndisc6")
	node := nstest.New(t, "node")
	peer := nstest.New(t, "peer")
	for _, ns := range []*nstest.NS{node, peer} {
		ns.Sysctl(t, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	nstest.Veth(t, node, "eth0", peer, "eth0")
	node.Run(t, "ip", "addr", "add", "172.31.249.1/24", "dev", "eth0")
	peer.Run(t, "ip", "addr", "add", "172.31.249.2/24", "dev", "eth0")
	const (
		onLo     = "172.31.248.10" // as kube-proxy's IPVS mode puts Service addresses on kube-ipvs0
		hostLo   = "172.31.248.11"
		onEth0   = "172.31.249.12" // on the incoming interface, in the sender's subnet
		notLocal = "172.31.249.13"
	)
	node.Run(t, "ip", "addr", "add", onLo+"/32", "dev", "lo")
	node.Run(t, "ip", "addr", "add", hostLo+"/32", "dev", "lo", "scope", "host")
	node.Run(t, "ip", "addr", "add", onEth0+"/24", "dev", "eth0")
	h := node.StartHelper(t, "ifaces")

	// IPv6 needs no check: the kernel answers a neighbour solicitation
	// only for an address of the interface it arrives on.
	node.Run(t, "ip", "-6", "addr", "add", "fd00:31:249::1/64", "dev", "eth0", "nodad")
	peer.Run(t, "ip", "-6", "addr", "add", "fd00:31:249::2/64", "dev", "eth0", "nodad")
	node.Run(t, "ip", "-6", "addr", "add", "fd00:31:248::10/128", "dev", "lo", "nodad")
	if _, err := peer.Try("ndisc6", "-1", "-r", "3", "-w", "300", "fd00:31:249::1", "eth0"); err != nil {
		t.Fatalf("no NDP answer for the node's own address on eth0: %v", err)
	}
	if out, err := peer.Try("ndisc6", "-1", "-r", "2", "-w", "300", "fd00:31:248::10", "eth0"); err == nil {
		t.Errorf("the kernel answered NDP for an address on lo: %s", out)
	}

	targets := []string{onLo, hostLo, onEth0, notLocal}
	for _, c := range []struct {
		all, eth0 int
		want      []bool // per target: the kernel answers
	}{
		{0, 0, []bool{true, true, true, false}},
		{1, 0, []bool{false, false, true, false}},
		{0, 1, []bool{false, false, true, false}}, // the larger of all and the interface's
		{2, 0, []bool{false, false, true, false}},
		{3, 0, []bool{true, false, true, false}},
		{8, 0, []bool{false, false, false, false}},
	} {
		node.Sysctl(t, fmt.Sprintf("net.ipv4.conf.all.arp_ignore=%d", c.all), fmt.Sprintf("net.ipv4.conf.eth0.arp_ignore=%d", c.eth0))
		var st ifaces.ARPState
		if err := json.Unmarshal([]byte(h.Do("arpstate eth0")), &st); err != nil {
			t.Fatal(err)
		}
		if got := st.Ignore["eth0"]; got != max(c.all, c.eth0) {
			t.Errorf("all=%d eth0=%d: effective arp_ignore %d, want %d", c.all, c.eth0, got, max(c.all, c.eth0))
		}
		// arping waits a whole second for an answer that does not come:
		// ask for every target at once.
		answered := make([]bool, len(targets))
		var wg sync.WaitGroup
		for i, target := range targets {
			wg.Go(func() {
				_, err := peer.Try("arping", "-c", "1", "-w", "1", "-I", "eth0", target)
				answered[i] = err == nil
			})
		}
		wg.Wait()
		for i, target := range targets {
			model := st.KernelAnswers("eth0", netip.MustParseAddr(target))
			if kernel := answered[i]; model != c.want[i] || kernel != c.want[i] {
				t.Errorf("all=%d eth0=%d, %s: model answers %v, kernel answered %v, want %v", c.all, c.eth0, target, model, kernel, c.want[i])
			}
		}
	}
}
