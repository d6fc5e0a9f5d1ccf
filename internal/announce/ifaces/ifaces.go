package ifaces

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Interface is what the responders need to know about one network
// interface.
type Interface struct {
	Name  string
	Index int
	MTU   int
	MAC   net.HardwareAddr
	Flags net.Flags
	// NoARP is set for interfaces flagged IFF_NOARP (dummy, kube-ipvs0 and
	// the like): no neighbour resolution happens on them.
	NoARP bool
	// HasIPv4 is set when the interface has at least one IPv4 address.
	HasIPv4 bool
	// HasIPv6Global is set when it has an IPv6 address that is not
	// link-local (global or unique local) and not tentative.
	HasIPv6Global bool
	// HasIPv6LinkLocal is set when it has a usable (not tentative)
	// fe80::/10 address; the NDP responder needs one to send from.
	HasIPv6LinkLocal bool
	// Master is the bond or bridge the interface is enslaved to, empty
	// when it is not a port of one.
	Master string
}

// Up reports whether the interface is administratively up.
func (i Interface) Up() bool { return i.Flags&net.FlagUp != 0 }

// LinkUp reports whether the interface is up with its link working
// (administratively up and running: carrier, or the peer of a veth up).
func (i Interface) LinkUp() bool {
	return i.Flags&net.FlagUp != 0 && i.Flags&net.FlagRunning != 0
}

// Enslaved reports whether the interface is a port of a bond or bridge.
func (i Interface) Enslaved() bool { return i.Master != "" }

// HasAddress reports whether the interface has an address other than a
// link-local one.
func (i Interface) HasAddress() bool { return i.HasIPv4 || i.HasIPv6Global }

// Default picks the interfaces to answer on when an L2Advertisement names
// none: broadcast-capable, not loopback, not NOARP, with an IPv4 or a
// non-link-local IPv6 address, and not enslaved to a bond or bridge. Names
// come in list order. An interface that is down is kept, so the set does
// not change with link state; what a node does while the interfaces it
// answers on have no link is the speaker's decision (it steps aside, see
// speaker.L2Loop).
func Default(list []Interface) []string {
	var out []string
	seen := map[string]bool{}
	for _, i := range list {
		switch {
		case i.Flags&net.FlagBroadcast == 0,
			i.Flags&net.FlagLoopback != 0,
			i.NoARP,
			!i.HasAddress(),
			i.Enslaved(),
			seen[i.Name]:
			continue
		}
		seen[i.Name] = true
		out = append(out, i.Name)
	}
	return out
}

// Resolve returns the wanted interfaces that exist in list (up or down,
// as for Default), in the order of wanted, without duplicates. An explicit choice is honoured
// otherwise as given: an enslaved or address-less interface is returned
// when asked for.
func Resolve(list []Interface, wanted []string) []string {
	exists := make(map[string]bool, len(list))
	for _, i := range list {
		exists[i.Name] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, name := range wanted {
		if !exists[name] || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	return out
}

// iffNoARP is IFF_NOARP from <linux/if.h>; net.Flags does not carry it.
const iffNoARP = 0x80

// Address flags from <linux/if_addr.h>.
const (
	ifaFlagDADFailed = 0x08
	ifaFlagTentative = 0x40
	ifaFlags         = 8 // IFA_FLAGS attribute: 32-bit flags
)

// List returns the interfaces of the caller's network namespace, in index
// order.
func List() ([]Interface, error) {
	links, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	addrs, err := dumpAddrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]Interface, 0, len(links))
	for _, l := range links {
		i := Interface{
			Name:  l.Name,
			Index: l.Index,
			MTU:   l.MTU,
			MAC:   l.HardwareAddr,
			Flags: l.Flags,
		}
		k := kindsOf(addrs[l.Index])
		i.HasIPv4, i.HasIPv6Global, i.HasIPv6LinkLocal = k.v4, k.v6Global, k.v6LinkLocal
		if i.Master, err = master(l.Name); err != nil {
			return nil, err
		}
		if i.NoARP, err = noARP(l.Name); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// sysClassNet is where the kernel describes interfaces.
const sysClassNet = "/sys/class/net"

// master returns the name of the interface's master, or "" when the
// interface has none or vanished since it was listed.
func master(name string) (string, error) {
	target, err := os.Readlink(filepath.Join(sysClassNet, name, "master"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read master of %s: %w", name, err)
	}
	return filepath.Base(target), nil
}

// noARP reports whether IFF_NOARP is set; false when the interface
// vanished since it was listed.
func noARP(name string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(sysClassNet, name, "flags"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read flags of %s: %w", name, err)
	}
	flags, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	if err != nil {
		return false, fmt.Errorf("parse flags of %s: %w", name, err)
	}
	return flags&iffNoARP != 0, nil
}

// dumpAddrs returns the usable addresses of every interface, by index, from
// one RTM_GETADDR dump.
func dumpAddrs() (map[int][]netip.Addr, error) {
	msgs, err := dumpAddrMsgs(syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	return parseAddrs(msgs)
}

// dumpAddrMsgs dumps the addresses of family (AF_UNSPEC: all).
func dumpAddrMsgs(family int) ([]syscall.NetlinkMessage, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, family)
	if err != nil {
		return nil, err
	}
	return syscall.ParseNetlinkMessage(rib)
}

// parseAddrs turns the messages of an address dump into usable addresses
// by interface index.
func parseAddrs(msgs []syscall.NetlinkMessage) (map[int][]netip.Addr, error) {
	out := map[int][]netip.Addr{}
	err := eachAddr(msgs, func(_ *syscall.NetlinkMessage, index int, addr netip.Addr, usable bool) {
		if usable {
			out[index] = append(out[index], addr)
		}
	})
	return out, err
}

// eachAddr calls f with every address message (RTM_NEWADDR) of a dump,
// parsed by parseAddr.
func eachAddr(msgs []syscall.NetlinkMessage, f func(m *syscall.NetlinkMessage, index int, addr netip.Addr, usable bool)) error {
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWADDR {
			continue
		}
		index, addr, usable, err := parseAddr(m)
		if err != nil {
			return err
		}
		f(m, index, addr, usable)
	}
	return nil
}

// parseAddr reads an address message (RTM_NEWADDR or RTM_DELADDR): the
// interface index, the address, and whether it is usable (not tentative,
// DAD not failed). An invalid address is never usable.
func parseAddr(m *syscall.NetlinkMessage) (index int, addr netip.Addr, usable bool, err error) {
	if len(m.Data) < syscall.SizeofIfAddrmsg {
		return 0, netip.Addr{}, false, fmt.Errorf("short address message (%d bytes)", len(m.Data))
	}
	// struct ifaddrmsg: family, prefixlen, flags, scope (one byte each),
	// then the interface index in host byte order.
	flags := uint32(m.Data[2])
	index = int(binary.NativeEndian.Uint32(m.Data[4:8]))
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return 0, netip.Addr{}, false, err
	}
	var local, address netip.Addr
	for _, a := range attrs {
		switch a.Attr.Type {
		case syscall.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(a.Value)
		case syscall.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(a.Value)
		case ifaFlags:
			if len(a.Value) == 4 {
				flags = binary.NativeEndian.Uint32(a.Value)
			}
		}
	}
	// On point-to-point links IFA_ADDRESS is the peer's; IFA_LOCAL, when
	// present, is ours.
	addr = address
	if local.IsValid() {
		addr = local
	}
	addr = addr.Unmap()
	return index, addr, addr.IsValid() && flags&(ifaFlagTentative|ifaFlagDADFailed) == 0, nil
}

// addrKinds is what List reports of an interface's addresses.
type addrKinds struct{ v4, v6Global, v6LinkLocal bool }

// add counts a usable address in.
func (k *addrKinds) add(a netip.Addr) {
	switch {
	case a.Is4():
		k.v4 = true
	case a.IsLinkLocalUnicast():
		k.v6LinkLocal = true
	default:
		k.v6Global = true
	}
}

// kindsOf sums up usable addresses as List reports them.
func kindsOf(addrs []netip.Addr) addrKinds {
	var k addrKinds
	for _, a := range addrs {
		k.add(a)
	}
	return k
}

// Net returns the interface as the standard library describes it, for
// socket constructors.
func (i Interface) Net() *net.Interface {
	return &net.Interface{Index: i.Index, MTU: i.MTU, Name: i.Name, HardwareAddr: i.MAC, Flags: i.Flags}
}
