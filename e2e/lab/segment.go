package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// A second layer-2 segment, for scenarios where the interface Herald
// answers on is not the one memberlist talks over (a VLAN or a bond kept
// for the load-balanced addresses): a bridge in the switch namespace, an
// interface ifname without address in every node, and one in the L2
// client. Its carrier on a node is cut from the switch side, as a pulled
// cable or a failed switch port would; the node's eth0 stays up.

// segmentBridge is the second segment's bridge, inside NetnsSwitch.
const segmentBridge = "br1"

// switchPort names a node's (or the L2 client's) port on the second
// segment, on the switch side.
func switchPort(ifname, host string) string { return ifname + "-" + host }

// AddSegment adds the second segment with interface ifname in every node
// and in the L2 client, which gets client as its address. It returns the
// nodes' MACs on it, lower case, by node. A segment left by an earlier
// run is replaced.
func (l *Lab) AddSegment(ctx context.Context, ifname string, client netip.Prefix) (map[string]string, error) {
	if err := l.RemoveSegment(ctx, ifname); err != nil {
		return nil, err
	}
	cmds := [][]string{
		ipn(NetnsSwitch, "link", "add", segmentBridge, "type", "bridge"),
		ipn(NetnsSwitch, "link", "set", segmentBridge, "up"),
	}
	hosts := map[string]string{"l2client": NetnsL2Client}
	for _, n := range l.state.Nodes {
		hosts[n.Name] = n.Netns
	}
	for host, ns := range hosts {
		port := switchPort(ifname, host)
		cmds = append(cmds,
			ipn(NetnsSwitch, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns),
			ipn(NetnsSwitch, "link", "set", port, "master", segmentBridge, "up"),
			ipn(ns, "link", "set", ifname, "up"),
		)
	}
	cmds = append(cmds, ipn(NetnsL2Client, "addr", "add", client.String(), "dev", ifname))
	if err := runAll(ctx, cmds...); err != nil {
		return nil, fmt.Errorf("second segment: %w", err)
	}
	macs := map[string]string{}
	for _, n := range l.state.Nodes {
		mac, err := l.linkMAC(ctx, n.Name, ifname)
		if err != nil {
			return nil, err
		}
		macs[n.Name] = strings.ToLower(mac.String())
	}
	return macs, nil
}

// RemoveSegment deletes the second segment (its veths go with their
// switch-side ends); nothing to remove is no error.
func (l *Lab) RemoveSegment(ctx context.Context, ifname string) error {
	out, err := run(ctx, ipn(NetnsSwitch, "-o", "link", "show")...)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name == segmentBridge || strings.HasPrefix(name, ifname+"-") {
			if err := run1(ctx, ipn(NetnsSwitch, "link", "del", name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// SegmentLink sets node's port on the second segment up or down on the
// switch side: down, the node's ifname loses its carrier.
func (l *Lab) SegmentLink(ctx context.Context, node, ifname string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run1(ctx, ipn(NetnsSwitch, "link", "set", switchPort(ifname, node), state))
}
