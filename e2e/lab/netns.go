package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// run runs a command on the machine (root namespace) and returns its
// output; errors carry stderr.
func run(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// runAll runs commands in order and stops at the first error.
func runAll(ctx context.Context, cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := run(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

func ipn(ns string, args ...string) []string {
	return append([]string{"ip", "-n", ns}, args...)
}

func sysctl(ns string, kv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns, "sysctl", "-q", "-w"}, kv...)
}

// hostNS is one namespace on the node segment.
type hostNS struct {
	ns, port, mac string
	v4, v6        netip.Addr
	gateway       bool // default routes via the router
}

// nodeSysctls are what a node needs (lab-notes): the kernel must not answer
// ARP for a VIP on lo (arp_ignore/arp_announce), a link flap must not drop
// the IPv6 address (keep_addr_on_down), no forwarding, no autoconfiguration.
var nodeSysctls = []string{
	"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.default.arp_ignore=1",
	"net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.default.arp_announce=2",
	"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
	"net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0",
	"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1",
}

// quietV6 turns off router advertisements, autoconfiguration and duplicate
// address detection (addresses are usable at once).
var quietV6 = []string{
	"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
	"net.ipv6.conf.all.autoconf=0", "net.ipv6.conf.default.autoconf=0",
	"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
}

// buildNetwork creates every namespace, link, address and route of the
// lab. It is not idempotent: Up runs Down first.
func (l *Lab) buildNetwork(ctx context.Context) error {
	if err := checkMgmtFree(); err != nil {
		return err
	}
	all := []string{NetnsSwitch, NetnsAPI, NetnsRouter, NetnsClient, NetnsL2Client}
	for _, n := range l.state.Nodes {
		all = append(all, n.Netns)
	}
	for _, ns := range all {
		if err := runAll(ctx, []string{"ip", "netns", "add", ns}, ipn(ns, "link", "set", "lo", "up")); err != nil {
			return err
		}
	}
	// The switch: a bridge that floods multicast like an unmanaged switch,
	// with no address of its own.
	if err := runAll(ctx,
		sysctl(NetnsSwitch, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"),
		ipn(NetnsSwitch, "link", "add", BridgeName, "type", "bridge", "mcast_snooping", "0"),
		ipn(NetnsSwitch, "link", "set", BridgeName, "up"),
	); err != nil {
		return err
	}

	hosts := []hostNS{
		{ns: NetnsRouter, port: "p-rtr", mac: "02:48:4c:00:00:01", v4: RouterV4, v6: RouterV6},
		{ns: NetnsAPI, port: "p-api", mac: "02:48:4c:00:00:02", v4: APIV4, v6: APIV6},
		{ns: NetnsL2Client, port: "p-l2c", mac: "02:48:4c:00:00:64", v4: L2ClientV4, v6: L2ClientV6, gateway: true},
	}
	for _, n := range l.state.Nodes {
		hosts = append(hosts, hostNS{ns: n.Netns, port: "p-" + n.Name, mac: n.MAC, v4: n.IPv4, v6: n.IPv6, gateway: true})
	}
	for _, h := range hosts {
		kv := quietV6
		if strings.HasPrefix(h.ns, NetnsPrefix+"n") {
			kv = append(append([]string{}, quietV6...), nodeSysctls...)
		}
		if err := run1(ctx, sysctl(h.ns, kv...)); err != nil {
			return err
		}
		if err := l.attach(ctx, h); err != nil {
			return err
		}
	}
	for _, n := range l.state.Nodes {
		if err := run1(ctx, sysctl(n.Netns, "net.ipv6.conf.eth0.keep_addr_on_down=1")); err != nil {
			return err
		}
	}

	// The router's second leg and the routed client.
	if err := runAll(ctx,
		sysctl(NetnsClient, quietV6...),
		[]string{"ip", "link", "add", "eth1", "address", "02:48:4c:00:02:01", "netns", NetnsRouter, "type", "veth",
			"peer", "name", "eth0", "address", "02:48:4c:00:02:02", "netns", NetnsClient},
		ipn(NetnsRouter, "addr", "add", pfx(RouterRoutedV4, RoutedV4), "dev", "eth1"),
		ipn(NetnsRouter, "-6", "addr", "add", pfx(RouterRoutedV6, RoutedV6), "dev", "eth1", "nodad"),
		ipn(NetnsRouter, "link", "set", "eth1", "up"),
		ipn(NetnsClient, "addr", "add", pfx(ClientV4, RoutedV4), "dev", "eth0"),
		ipn(NetnsClient, "-6", "addr", "add", pfx(ClientV6, RoutedV6), "dev", "eth0", "nodad"),
		ipn(NetnsClient, "link", "set", "eth0", "up"),
		ipn(NetnsClient, "route", "add", "default", "via", RouterRoutedV4.String()),
		ipn(NetnsClient, "-6", "route", "add", "default", "via", RouterRoutedV6.String()),
		// Forwarding with kernel ECMP that hashes on ports too, so
		// connections from one client spread over the next hops, and
		// skips next hops whose neighbour entry failed.
		sysctl(NetnsRouter, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
			"net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1",
			"net.ipv4.fib_multipath_use_neigh=1", "net.ipv4.conf.all.rp_filter=0"),
	); err != nil {
		return err
	}

	// The management link: the machine reaches the API server, nothing
	// else.
	return runAll(ctx,
		sysctl(NetnsAPI, "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"),
		[]string{"ip", "link", "add", MgmtLinkHost, "type", "veth", "peer", "name", mgmtLinkAPI, "netns", NetnsAPI},
		[]string{"ip", "addr", "add", MgmtHost.String(), "dev", MgmtLinkHost},
		[]string{"ip", "link", "set", MgmtLinkHost, "up"},
		ipn(NetnsAPI, "addr", "add", MgmtAPI.String(), "dev", mgmtLinkAPI),
		ipn(NetnsAPI, "link", "set", mgmtLinkAPI, "up"),
	)
}

func run1(ctx context.Context, argv []string) error {
	_, err := run(ctx, argv...)
	return err
}

// pfx writes a with p's length ("172.31.255.11/24").
func pfx(a netip.Addr, p netip.Prefix) string {
	return netip.PrefixFrom(a, p.Bits()).String()
}

// attach plugs a namespace into the switch as eth0 with its addresses.
func (l *Lab) attach(ctx context.Context, h hostNS) error {
	cmds := [][]string{
		{"ip", "link", "add", "eth0", "address", h.mac, "netns", h.ns, "type", "veth", "peer", "name", h.port, "netns", NetnsSwitch},
		ipn(NetnsSwitch, "link", "set", h.port, "master", BridgeName),
		ipn(NetnsSwitch, "link", "set", h.port, "up"),
		ipn(h.ns, "addr", "add", pfx(h.v4, SegmentV4), "dev", "eth0"),
		ipn(h.ns, "-6", "addr", "add", pfx(h.v6, SegmentV6), "dev", "eth0", "nodad"),
		ipn(h.ns, "link", "set", "eth0", "up"),
	}
	if h.gateway {
		cmds = append(cmds,
			ipn(h.ns, "route", "add", "default", "via", RouterV4.String()),
			ipn(h.ns, "-6", "route", "add", "default", "via", RouterV6.String()))
	}
	return runAll(ctx, cmds...)
}

// checkMgmtFree refuses to add the management address when the machine
// already has an address in its range (someone else's network).
func checkMgmtFree() error {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err == nil && MgmtHost.Masked().Contains(p.Addr()) && f[1] != MgmtLinkHost {
				return fmt.Errorf("the machine already has %s on %s, in the lab's management range %s", p, f[1], MgmtHost.Masked())
			}
		}
	}
	return nil
}

// labNamespaces lists the lab's namespaces that exist now.
func labNamespaces(ctx context.Context) []string {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && isLabNetns(f[0]) {
			found = append(found, f[0])
		}
	}
	return found
}

// linkExists reports whether a link exists in the root namespace.
func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
