package speaker

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/herald-lb/herald/internal/announce/ifaces"
)

// KernelARPConflict is a layer-2 address another node owns that this
// node's kernel answers ARP for by itself, so that a client may get this
// node's MAC instead of the owner's: what happens with kube-proxy in IPVS
// mode (every Service address on kube-ipvs0) when strictARP is off.
type KernelARPConflict struct {
	IP    netip.Addr
	Owner string
	// Iface is the interface the kernel answers on, ARPIgnore its
	// effective arp_ignore; Holder the interface holding the address.
	Iface, Holder string
	ARPIgnore     int
}

// KernelARPConflicts returns, sorted by address, the IPv4 addresses of
// desired owned by another node than node that the kernel, as st
// describes it, answers ARP for on one of ifs (the interfaces ARP requests
// reach: up, ARP-capable, with an IPv4 address). Each address appears
// once, with the first interface of ifs that answers.
//
// Cost: O(A·F) for A addresses and F interfaces.
func KernelARPConflicts(desired map[netip.Addr]L2Announcement, node string, ifs []string, st ifaces.ARPState) []KernelARPConflict {
	if len(st.Addrs) == 0 || len(ifs) == 0 {
		return nil
	}
	var out []KernelARPConflict
	for ip, a := range desired {
		if !ip.Is4() || a.Owner == node {
			continue
		}
		for _, i := range ifs {
			if st.KernelAnswers(i, ip) {
				out = append(out, KernelARPConflict{IP: ip, Owner: a.Owner, Iface: i, Holder: st.Addrs[ip].Iface, ARPIgnore: st.Ignore[i]})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b KernelARPConflict) int { return a.IP.Compare(b.IP) })
	return out
}

// KernelARPSummary describes conflicts in one sentence (empty for none),
// naming where they come from and what to set; it changes only when their
// kind does (interfaces, holders, settings), not with their number, so
// that it can say when to tell again.
func KernelARPSummary(node string, cs []KernelARPConflict) string {
	if len(cs) == 0 {
		return ""
	}
	type cause struct {
		iface, holder string
		ignore        int
	}
	var causes []cause
	for _, c := range cs {
		k := cause{c.Iface, c.Holder, c.ARPIgnore}
		if !slices.Contains(causes, k) {
			causes = append(causes, k)
		}
	}
	slices.SortFunc(causes, func(a, b cause) int {
		return strings.Compare(a.iface+" "+a.holder, b.iface+" "+b.holder)
	})
	var parts []string
	for _, k := range causes {
		parts = append(parts, fmt.Sprintf("addresses on %s answered on %s (arp_ignore %d)", k.holder, k.iface, k.ignore))
	}
	return fmt.Sprintf("the kernel of node %s answers ARP for layer-2 addresses that other nodes own: %s; "+
		"clients can reach this node instead of the owner; set net.ipv4.conf.all.arp_ignore=1 and "+
		"net.ipv4.conf.all.arp_announce=2 (kube-proxy in IPVS mode: strictARP: true)",
		node, strings.Join(parts, ", "))
}
