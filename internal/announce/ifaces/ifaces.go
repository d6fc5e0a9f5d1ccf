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
	// LinkLocal is the first usable link-local address, the one the NDP
	// responder sends from (invalid when none): when it changes, the
	// responder opens its socket again.
	LinkLocal netip.Addr
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
		i.HasIPv4, i.HasIPv6Global, i.HasIPv6LinkLocal, i.LinkLocal = k.v4, k.v6Global, k.v6LinkLocal, k.linkLocal
		if i.Master, err = master(sysClassNet, l.Name); err != nil {
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

// master returns the name of the bond or bridge the interface (under root,
// the sysfs net directory) is a port of, or "" when it has no master, its
// master is of another kind (a VRF), or it vanished since it was listed.
func master(root, name string) (string, error) {
	target, err := os.Readlink(filepath.Join(root, name, "master"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read master of %s: %w", name, err)
	}
	m := filepath.Base(target)
	// Only a bond or a bridge takes the port's traffic over; a VRF (or
	// any other master) leaves the interface answering for itself.
	for _, kind := range []string{"bonding", "bridge"} {
		if _, err := os.Stat(filepath.Join(root, m, kind)); err == nil {
			return m, nil
		}
	}
	return "", nil
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
	out := map[int][]netip.Addr{}
	err := eachAddrMsg(syscall.AF_UNSPEC, func(a addrInfo) { addUsable(out, a) })
	return out, err
}

// addUsable adds a to out (usable addresses by index) if it is usable.
func addUsable(out map[int][]netip.Addr, a addrInfo) {
	if a.usable {
		out[a.index] = append(out[a.index], a.addr)
	}
}

// eachAddrMsg dumps the addresses of family and calls f with each as it
// is read: it holds one read's worth at a time and allocates nothing per
// address (ten thousand addresses make a megabyte
// of messages).
func eachAddrMsg(family int, f func(a addrInfo)) error {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer syscall.Close(fd)
	kernel := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return os.NewSyscallError("bind", err)
	}
	const seq = 1
	// struct nlmsghdr, then struct rtgenmsg (the family, padded to 4).
	req := make([]byte, syscall.NLMSG_HDRLEN+syscall.SizeofRtGenmsg+3)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], syscall.RTM_GETADDR)
	binary.NativeEndian.PutUint16(req[6:8], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], seq)
	req[syscall.NLMSG_HDRLEN] = byte(family)
	if err := syscall.Sendto(fd, req, 0, kernel); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	buf := make([]byte, 64<<10)
	each := func(h syscall.NlMsghdr, data []byte) (bool, error) {
		if h.Seq != seq {
			return false, nil
		}
		switch h.Type {
		case syscall.NLMSG_DONE:
			return true, nil
		case syscall.NLMSG_ERROR:
			if len(data) >= 4 {
				if errno := -int32(binary.NativeEndian.Uint32(data[:4])); errno != 0 {
					return true, os.NewSyscallError("address dump", syscall.Errno(errno))
				}
			}
			return true, nil
		case syscall.RTM_NEWADDR:
			a, err := parseAddrData(data)
			if err != nil {
				return true, err
			}
			f(a)
		}
		return false, nil
	}
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		if done, err := netlinkMsgs(buf[:n], each); done || err != nil {
			return err
		}
	}
}

// parseAddr reads an address message (RTM_NEWADDR or RTM_DELADDR): the
// interface index, the address, and whether it is usable (not tentative,
// DAD not failed). An invalid address is never usable.
func parseAddr(m *syscall.NetlinkMessage) (index int, addr netip.Addr, usable bool, err error) {
	a, err := parseAddrData(m.Data)
	return a.index, a.addr, a.usable, err
}

// addrInfo is what an address message says.
type addrInfo struct {
	index  int
	addr   netip.Addr
	usable bool
	scope  uint8
}

// parseAddrData reads the payload of an address message without
// allocating (ten thousand addresses are read at a time).
func parseAddrData(data []byte) (addrInfo, error) {
	if len(data) < syscall.SizeofIfAddrmsg {
		return addrInfo{}, fmt.Errorf("short address message (%d bytes)", len(data))
	}
	// struct ifaddrmsg: family, prefixlen, flags, scope (one byte each),
	// then the interface index in host byte order; then attributes.
	a := addrInfo{index: int(binary.NativeEndian.Uint32(data[4:8])), scope: data[3]}
	flags := uint32(data[2])
	var local, address netip.Addr
	for b := data[syscall.SizeofIfAddrmsg:]; len(b) > 0; {
		// struct rtattr: length (header included), type; value; padded
		// to 4 bytes.
		if len(b) < syscall.SizeofRtAttr {
			return addrInfo{}, syscall.EINVAL
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < syscall.SizeofRtAttr || l > len(b) {
			return addrInfo{}, syscall.EINVAL
		}
		v := b[syscall.SizeofRtAttr:l]
		switch binary.NativeEndian.Uint16(b[2:4]) {
		case syscall.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(v)
		case syscall.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(v)
		case ifaFlags:
			if len(v) == 4 {
				flags = binary.NativeEndian.Uint32(v)
			}
		}
		b = b[min(len(b), (l+syscall.RTA_ALIGNTO-1)&^(syscall.RTA_ALIGNTO-1)):]
	}
	// On point-to-point links IFA_ADDRESS is the peer's; IFA_LOCAL, when
	// present, is ours.
	a.addr = address
	if local.IsValid() {
		a.addr = local
	}
	a.addr = a.addr.Unmap()
	a.usable = a.addr.IsValid() && flags&(ifaFlagTentative|ifaFlagDADFailed) == 0
	return a, nil
}

// netlinkMsgs calls f with the header and payload of each message in b
// (one read from a netlink socket) without allocating; a malformed
// message ends it with an error.
func netlinkMsgs(b []byte, f func(h syscall.NlMsghdr, data []byte) (stop bool, err error)) (stop bool, err error) {
	for len(b) >= syscall.NLMSG_HDRLEN {
		h := syscall.NlMsghdr{
			Len:   binary.NativeEndian.Uint32(b[0:4]),
			Type:  binary.NativeEndian.Uint16(b[4:6]),
			Flags: binary.NativeEndian.Uint16(b[6:8]),
			Seq:   binary.NativeEndian.Uint32(b[8:12]),
			Pid:   binary.NativeEndian.Uint32(b[12:16]),
		}
		if h.Len < syscall.NLMSG_HDRLEN || int(h.Len) > len(b) {
			return false, syscall.EINVAL
		}
		if stop, err := f(h, b[syscall.NLMSG_HDRLEN:h.Len]); stop || err != nil {
			return stop, err
		}
		b = b[min(len(b), (int(h.Len)+syscall.NLMSG_ALIGNTO-1)&^(syscall.NLMSG_ALIGNTO-1)):]
	}
	return false, nil
}

// addrKinds is what List reports of an interface's addresses.
type addrKinds struct {
	v4, v6Global, v6LinkLocal bool
	linkLocal                 netip.Addr // the first link-local address
}

// add counts a usable address in.
func (k *addrKinds) add(a netip.Addr) {
	switch {
	case a.Is4():
		k.v4 = true
	case a.IsLinkLocalUnicast():
		if !k.v6LinkLocal {
			k.linkLocal = a.WithZone("")
		}
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
