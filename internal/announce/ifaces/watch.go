package ifaces

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
)

// rtnetlink multicast groups from <linux/rtnetlink.h>.
const (
	rtmgrpLink       = 0x1
	rtmgrpIPv4Ifaddr = 0x10
	rtmgrpIPv6Ifaddr = 0x100
)

// Watch reports changes to the interfaces of the caller's network
// namespace, as List sees them. A value is sent on the returned channel
// whenever the kernel announces a link added, removed or changed, and
// whenever an address added or removed changes what List reports of its
// interface: the first or last usable address of a kind (IPv4, IPv6
// global, IPv6 link-local). Other address changes send nothing: on a node
// whose kube-proxy (IPVS) or a local proxy puts every Service address on
// an interface, each Service would otherwise cost every listener a
// listing of all those addresses. Values coalesce (at most one is
// pending), so a burst of changes is one value. A lost notification (the
// kernel's buffer overran) is reported as a change too, after the
// addresses are listed again. The channel is closed when ctx ends or the
// socket fails.
//
// It starts two goroutines that end with ctx.
func Watch(ctx context.Context) (<-chan struct{}, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", os.NewSyscallError("socket", err))
	}
	sa := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: rtmgrpLink | rtmgrpIPv4Ifaddr | rtmgrpIPv6Ifaddr}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("subscribe to link and address changes: %w", os.NewSyscallError("bind", err))
	}
	// Listed after subscribing: a change in between is in the socket's
	// queue and applied on top (applying is idempotent).
	dump, err := dumpAddrs()
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	t := newAddrTracker(dump)
	// Non-blocking, so reads go through the runtime poller and Close
	// unblocks them.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		f.Close()
	}()
	go func() {
		defer close(ch)
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			changed := true
			switch {
			case errors.Is(err, syscall.ENOBUFS):
				if dump, err := dumpAddrs(); err == nil {
					t = newAddrTracker(dump)
				}
			case err != nil:
				return
			default:
				changed = t.apply(buf[:n])
			}
			if !changed {
				continue
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}

// addrTracker follows the usable addresses of every interface, by index,
// from address notifications.
type addrTracker map[int]map[netip.Addr]struct{}

func newAddrTracker(dump map[int][]netip.Addr) addrTracker {
	t := addrTracker{}
	for index, addrs := range dump {
		for _, a := range addrs {
			t.set(index, a, true)
		}
	}
	return t
}

func (t addrTracker) set(index int, a netip.Addr, usable bool) {
	if usable {
		if t[index] == nil {
			t[index] = map[netip.Addr]struct{}{}
		}
		t[index][a] = struct{}{}
		return
	}
	delete(t[index], a)
	if len(t[index]) == 0 {
		delete(t, index)
	}
}

func (t addrTracker) kinds(index int) addrKinds {
	var k addrKinds
	for a := range t[index] {
		k.add(a)
	}
	return k
}

// apply applies the notifications in b and reports whether List's view
// may have changed: any link message, an address change that changes its
// interface's kinds, or anything it cannot read.
func (t addrTracker) apply(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return true
	}
	changed := false
	for i := range msgs {
		m := &msgs[i]
		switch m.Header.Type {
		case syscall.RTM_NEWADDR, syscall.RTM_DELADDR:
			index, addr, usable, err := parseAddr(m)
			if err != nil {
				changed = true
				continue
			}
			if !addr.IsValid() {
				continue
			}
			before := t.kinds(index)
			t.set(index, addr, usable && m.Header.Type == syscall.RTM_NEWADDR)
			if t.kinds(index) != before {
				changed = true
			}
		case syscall.RTM_DELLINK:
			if len(m.Data) >= syscall.SizeofIfInfomsg {
				// struct ifinfomsg: family, pad, type (2), index (4).
				delete(t, int(binary.NativeEndian.Uint32(m.Data[4:8])))
			}
			changed = true
		default:
			changed = true
		}
	}
	return changed
}
