package ifaces

import (
	"context"
	"errors"
	"fmt"
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
// namespace. Whenever the kernel announces a link or an address added,
// removed or changed, a value is sent on the returned channel; values
// coalesce (at most one is pending), so a burst of changes is one value.
// A lost notification (the kernel's buffer overran) is reported as a
// change too. The channel is closed when ctx ends or the socket fails.
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
			_, err := f.Read(buf)
			if err != nil && !errors.Is(err, syscall.ENOBUFS) {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}
