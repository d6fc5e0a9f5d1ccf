package ifaces

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ARPState is what decides whether the node's kernel itself answers an
// ARP request, besides Herald's responder: where each IPv4 address of the
// namespace sits, and the arp_ignore setting of the interfaces requests
// arrive on. kube-proxy in IPVS mode puts every Service address on
// kube-ipvs0; with arp_ignore 0 (the kernel's default) every node then
// answers ARP for every one of them, whoever owns it.
type ARPState struct {
	// Addrs are the namespace's IPv4 addresses.
	Addrs map[netip.Addr]AddrPlace
	// Ignore is the effective arp_ignore of each interface: the larger
	// of net.ipv4.conf.all.arp_ignore and the interface's own.
	Ignore map[string]int
}

// AddrPlace is where an address is configured.
type AddrPlace struct {
	Iface string
	// HostScope is set for an address of scope host (127.0.0.1 and
	// the like); addresses added by hand or by kube-proxy are global.
	HostScope bool
}

// KernelAnswers reports whether the kernel answers an ARP request for
// target arriving on iface, following the kernel's arp_ignore levels
// (Documentation/networking/ip-sysctl.rst; net/ipv4/arp.c):
//
//   - 0 (default), 4-7 and above 8: any local address, on any interface;
//   - 1: only an address configured on the incoming interface;
//   - 2: the same, if the sender is in the address's subnet (counted as
//     answering: the check cannot know the sender);
//   - 3: any local address whose scope is not host;
//   - 8: none.
//
// A target that is no local address is never answered by the kernel.
func (s ARPState) KernelAnswers(iface string, target netip.Addr) bool {
	at, ok := s.Addrs[target]
	if !ok {
		return false
	}
	switch s.Ignore[iface] {
	case 1, 2:
		return at.Iface == iface
	case 3:
		return !at.HostScope
	case 8:
		return false
	}
	return true
}

// ReadARPState reads the effective arp_ignore of the interfaces named and
// the namespace's IPv4 addresses that can matter for them (one RTM_GETADDR
// dump, read as it comes): all of them, or, when every one of the
// interfaces answers only for its own addresses or for none (arp_ignore
// 1, 2, 8: the usual case, strict ARP), only theirs. A node with
// kube-proxy's IPVS mode has every Service address on kube-ipvs0, so the
// usual case keeps two addresses, not ten thousand.
func ReadARPState(names []string) (ARPState, error) {
	s := ARPState{Ignore: make(map[string]int, len(names)), Addrs: map[netip.Addr]AddrPlace{}}
	all, err := readARPIgnore("all")
	if err != nil {
		return ARPState{}, err
	}
	ownOnly := true
	for _, n := range names {
		v, err := readARPIgnore(n)
		if err != nil {
			return ARPState{}, err
		}
		s.Ignore[n] = max(all, v)
		if v := s.Ignore[n]; v != 1 && v != 2 && v != 8 {
			ownOnly = false
		}
	}
	links, err := net.Interfaces()
	if err != nil {
		return ARPState{}, fmt.Errorf("list links: %w", err)
	}
	byIndex := make(map[int]string, len(links))
	for _, l := range links {
		if !ownOnly || slices.Contains(names, l.Name) {
			byIndex[l.Index] = l.Name
		}
	}
	err = eachAddrMsg(syscall.AF_INET, func(a addrInfo) {
		if name, ok := byIndex[a.index]; ok && a.addr.Is4() {
			s.Addrs[a.addr] = AddrPlace{Iface: name, HostScope: a.scope == rtScopeHost}
		}
	})
	if err != nil {
		return ARPState{}, fmt.Errorf("list addresses: %w", err)
	}
	return s, nil
}

// rtScopeHost is RT_SCOPE_HOST, an address's scope in struct ifaddrmsg.
const rtScopeHost = 254

// procConf is where the kernel keeps per-interface IPv4 settings.
const procConf = "/proc/sys/net/ipv4/conf"

// readARPIgnore reads net.ipv4.conf.NAME.arp_ignore; 0 when the interface
// vanished.
func readARPIgnore(name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(procConf, name, "arp_ignore"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read arp_ignore of %s: %w", name, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse arp_ignore of %s: %w", name, err)
	}
	return v, nil
}
