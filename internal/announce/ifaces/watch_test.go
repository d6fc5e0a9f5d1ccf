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

// referenceParseAddr reads an address message with the standard library's
// attribute parser, independently of parseAddrData (which the standard
// library's parser can panic on: not ok then).
func referenceParseAddr(data []byte) (a addrInfo, ok bool) {
	defer func() {
		if recover() != nil {
			a, ok = addrInfo{}, false
		}
	}()
	m := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: data}
	if len(data) < syscall.SizeofIfAddrmsg {
		return addrInfo{}, false
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return addrInfo{}, false
	}
	a = addrInfo{index: int(binary.NativeEndian.Uint32(data[4:8])), scope: data[3]}
	flags := uint32(data[2])
	var local, address netip.Addr
	for _, at := range attrs {
		switch at.Attr.Type {
		case syscall.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(at.Value)
		case syscall.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(at.Value)
		case ifaFlags:
			if len(at.Value) == 4 {
				flags = binary.NativeEndian.Uint32(at.Value)
			}
		}
	}
	a.addr = address
	if local.IsValid() {
		a.addr = local
	}
	a.addr = a.addr.Unmap()
	a.usable = a.addr.IsValid() && flags&(ifaFlagTentative|ifaFlagDADFailed) == 0
	return a, true
}

// FuzzParseAddrData: the allocation-free parser reads what the standard
// library's parser reads, and never panics.
func FuzzParseAddrData(f *testing.F) {
	f.Add(v4(2, "172.31.255.11").Data)
	f.Add(v6(3, 0x40, "fd00::1").Data)
	f.Add(addrMsg(syscall.AF_INET6, 0, 1, addrAttr(syscall.IFA_ADDRESS, "fd00::2"), addrAttr(syscall.IFA_LOCAL, "fd00::3")).Data)
	f.Add([]byte{2, 32, 0, 254, 1, 0, 0, 0, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseAddrData(data)
		want, ok := referenceParseAddr(data)
		if ok && err == nil && got != want {
			t.Fatalf("parseAddrData = %+v, the standard library's parser reads %+v", got, want)
		}
		if len(data) < syscall.SizeofIfAddrmsg && err == nil {
			t.Fatal("a short message read")
		}
	})
}
