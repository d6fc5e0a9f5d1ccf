package ifaces

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
)

// wire encodes messages as one read from the socket returns them.
func wire(msgs ...syscall.NetlinkMessage) []byte {
	var b []byte
	for _, m := range msgs {
		l := syscall.NLMSG_HDRLEN + len(m.Data)
		b = binary.NativeEndian.AppendUint32(b, uint32(l))
		b = binary.NativeEndian.AppendUint16(b, m.Header.Type)
		b = binary.NativeEndian.AppendUint16(b, m.Header.Flags)
		b = binary.NativeEndian.AppendUint32(b, m.Header.Seq)
		b = binary.NativeEndian.AppendUint32(b, m.Header.Pid)
		b = append(b, m.Data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func del(m syscall.NetlinkMessage) syscall.NetlinkMessage {
	m.Header.Type = syscall.RTM_DELADDR
	return m
}

func v4(index uint32, s string) syscall.NetlinkMessage {
	return addrMsg(syscall.AF_INET, 0, index, addrAttr(syscall.IFA_ADDRESS, s), addrAttr(syscall.IFA_LOCAL, s))
}

func v6(index uint32, flags byte, s string) syscall.NetlinkMessage {
	return addrMsg(syscall.AF_INET6, flags, index, addrAttr(syscall.IFA_ADDRESS, s))
}

// TestAddrTracker: only an address change that changes what List says of
// its interface (its first or last usable address of a kind) is a change;
// link messages always are.
func TestAddrTracker(t *testing.T) {
	tr := newAddrTracker(map[int][]netip.Addr{2: {netip.MustParseAddr("172.31.255.11")}})
	link := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWLINK}, Data: make([]byte, syscall.SizeofIfInfomsg)}
	dellink := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_DELLINK},
		Data: binary.NativeEndian.AppendUint32([]byte{0, 0, 0, 0}, 2)}
	for _, step := range []struct {
		name string
		msgs []syscall.NetlinkMessage
		want bool
	}{
		{"a Service address on lo (the first IPv4 there)", []syscall.NetlinkMessage{v4(1, "172.31.130.1")}, true},
		{"a thousand more on lo", func() []syscall.NetlinkMessage {
			var ms []syscall.NetlinkMessage
			for i := range 1000 {
				ms = append(ms, v4(1, netip.AddrFrom4([4]byte{172, 31, 131 + byte(i/256), byte(i)}).String()))
			}
			return ms
		}(), false},
		{"the same address again (a refresh)", []syscall.NetlinkMessage{v4(1, "172.31.130.1")}, false},
		{"one of them removed", []syscall.NetlinkMessage{del(v4(1, "172.31.130.1"))}, false},
		{"a second IPv4 address on eth0", []syscall.NetlinkMessage{v4(2, "172.31.255.99")}, false},
		{"eth0's first IPv4 address removed, the second stays", []syscall.NetlinkMessage{del(v4(2, "172.31.255.11"))}, false},
		{"eth0's last IPv4 address removed", []syscall.NetlinkMessage{del(v4(2, "172.31.255.99"))}, true},
		{"a tentative link-local address", []syscall.NetlinkMessage{v6(2, ifaFlagTentative, "fe80::1")}, false},
		{"the link-local address after DAD", []syscall.NetlinkMessage{v6(2, 0, "fe80::1")}, true},
		{"a global IPv6 address", []syscall.NetlinkMessage{v6(2, 0, "fd00:31::11")}, true},
		{"the global address tentative again", []syscall.NetlinkMessage{v6(2, ifaFlagTentative, "fd00:31::11")}, true},
		{"an address removed that was never there", []syscall.NetlinkMessage{del(v4(5, "10.9.9.9"))}, false},
		{"a link message", []syscall.NetlinkMessage{link}, true},
		{"eth0 removed", []syscall.NetlinkMessage{dellink}, true},
		{"eth0's index reused: its first IPv4 address is new", []syscall.NetlinkMessage{v4(2, "172.31.255.11")}, true},
		{"a short address message", []syscall.NetlinkMessage{{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: []byte{2, 24, 0, 0}}}, true},
	} {
		if got := tr.apply(wire(step.msgs...)); got != step.want {
			t.Errorf("%s: changed = %v, want %v", step.name, got, step.want)
		}
	}
	truncated := wire(v4(1, "172.31.130.9"))[:syscall.NLMSG_HDRLEN+4]
	if got := tr.apply(truncated); !got {
		t.Error("an unreadable buffer must count as a change")
	}
	if n := len(tr[1]); n != 1000 {
		t.Errorf("lo holds %d addresses, want 1000", n)
	}
}
