package ifaces

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const upBroadcast = net.FlagUp | net.FlagBroadcast | net.FlagMulticast

func TestDefault(t *testing.T) {
	eth := func(name string, mod func(*Interface)) Interface {
		i := Interface{Name: name, Flags: upBroadcast, HasIPv4: true, HasIPv6LinkLocal: true}
		if mod != nil {
			mod(&i)
		}
		return i
	}
	tests := []struct {
		name string
		list []Interface
		want []string
	}{
		{"empty", nil, nil},
		{"plain interface with IPv4", []Interface{eth("eth0", nil)}, []string{"eth0"}},
		{"IPv6 global only", []Interface{eth("eth0", func(i *Interface) { i.HasIPv4, i.HasIPv6Global = false, true })}, []string{"eth0"}},
		{"link-local only (a pod's veth)", []Interface{eth("cali1", func(i *Interface) { i.HasIPv4 = false })}, nil},
		{"no address", []Interface{eth("eth0", func(i *Interface) { i.HasIPv4, i.HasIPv6LinkLocal = false, false })}, nil},
		{"down (kept: answered once up)", []Interface{eth("eth0", func(i *Interface) { i.Flags &^= net.FlagUp })}, []string{"eth0"}},
		{"no broadcast (tunnel)", []Interface{eth("wg0", func(i *Interface) { i.Flags = net.FlagUp | net.FlagPointToPoint })}, nil},
		{"loopback", []Interface{eth("lo", func(i *Interface) { i.Flags |= net.FlagLoopback })}, nil},
		{"NOARP (kube-ipvs0)", []Interface{eth("kube-ipvs0", func(i *Interface) { i.NoARP = true })}, nil},
		{"bond port", []Interface{eth("eth0", func(i *Interface) { i.Master = "bond0" })}, nil},
		{
			"bridge with its port",
			[]Interface{eth("eth0", func(i *Interface) { i.Master = "br0"; i.HasIPv4 = false }), eth("br0", nil)},
			[]string{"br0"},
		},
		{
			"list order kept, duplicates dropped",
			[]Interface{eth("eth2", nil), eth("eth0", nil), eth("eth2", nil), eth("eth1", nil)},
			[]string{"eth2", "eth0", "eth1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Default(tt.list)); diff != "" {
				t.Errorf("Default (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	list := []Interface{
		{Name: "eth0", Flags: upBroadcast, HasIPv4: true},
		{Name: "eth1", Flags: net.FlagBroadcast, HasIPv4: true}, // down
		{Name: "port0", Flags: upBroadcast, Master: "br0"},
		{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, HasIPv4: true},
	}
	tests := []struct {
		name   string
		wanted []string
		want   []string
	}{
		{"none wanted", nil, nil},
		{"existing and up", []string{"eth0"}, []string{"eth0"}},
		{"caller's order, duplicates dropped", []string{"lo", "eth0", "lo"}, []string{"lo", "eth0"}},
		{"missing dropped, down kept", []string{"eth1", "eth9", "eth0"}, []string{"eth1", "eth0"}},
		{"explicit choice honoured for an enslaved interface", []string{"port0"}, []string{"port0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Resolve(list, tt.wanted)); diff != "" {
				t.Errorf("Resolve (-want +got):\n%s", diff)
			}
		})
	}
}

// addrMsg builds an RTM_NEWADDR message as the kernel sends it.
func addrMsg(family, flags byte, index uint32, attrs ...attr) syscall.NetlinkMessage {
	data := []byte{family, 64, flags, 0}
	data = binary.NativeEndian.AppendUint32(data, index)
	for _, a := range attrs {
		l := 4 + len(a.value)
		data = binary.NativeEndian.AppendUint16(data, uint16(l))
		data = binary.NativeEndian.AppendUint16(data, a.typ)
		data = append(data, a.value...)
		for l%4 != 0 {
			data = append(data, 0)
			l++
		}
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: data}
}

type attr struct {
	typ   uint16
	value []byte
}

func addrAttr(typ uint16, s string) attr {
	return attr{typ, netip.MustParseAddr(s).AsSlice()}
}

func flagsAttr(f uint32) attr {
	return attr{ifaFlags, binary.NativeEndian.AppendUint32(nil, f)}
}

func TestParseAddrData(t *testing.T) {
	msgs := []syscall.NetlinkMessage{
		addrMsg(syscall.AF_INET, 0, 2, addrAttr(syscall.IFA_ADDRESS, "172.31.250.1"), addrAttr(syscall.IFA_LOCAL, "172.31.250.1")),
		// Point-to-point: IFA_ADDRESS is the peer, IFA_LOCAL ours.
		addrMsg(syscall.AF_INET, 0, 3, addrAttr(syscall.IFA_ADDRESS, "10.0.0.2"), addrAttr(syscall.IFA_LOCAL, "10.0.0.1")),
		addrMsg(syscall.AF_INET6, 0, 2, addrAttr(syscall.IFA_ADDRESS, "fe80::1")),
		addrMsg(syscall.AF_INET6, 0, 2, addrAttr(syscall.IFA_ADDRESS, "fd00:31:250::1")),
		// Not usable: tentative, failed DAD, tentative in the 32-bit flags.
		addrMsg(syscall.AF_INET6, ifaFlagTentative, 4, addrAttr(syscall.IFA_ADDRESS, "fd00:31:250::4")),
		addrMsg(syscall.AF_INET6, ifaFlagDADFailed, 4, addrAttr(syscall.IFA_ADDRESS, "fd00:31:250::5")),
		addrMsg(syscall.AF_INET6, 0, 4, addrAttr(syscall.IFA_ADDRESS, "fe80::4"), flagsAttr(ifaFlagTentative|0x100)),
		// Not an address message.
		{Header: syscall.NlMsghdr{Type: syscall.NLMSG_DONE}, Data: []byte{0, 0, 0, 0}},
	}
	got := map[int][]netip.Addr{}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWADDR {
			continue
		}
		a, err := parseAddrData(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		addUsable(got, a)
	}
	want := map[int][]netip.Addr{
		2: {netip.MustParseAddr("172.31.250.1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00:31:250::1")},
		3: {netip.MustParseAddr("10.0.0.1")},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("parseAddrData (-want +got):\n%s", diff)
	}

	short := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: []byte{2, 24}}
	if _, err := parseAddrData(short.Data); err == nil {
		t.Error("short message: want an error")
	}
}

func TestListHost(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range list {
		if i.Flags&net.FlagLoopback == 0 {
			continue
		}
		if !i.HasIPv4 || i.Enslaved() {
			t.Errorf("loopback %+v: want an IPv4 address and no master", i)
		}
		for _, name := range Default(list) {
			if name == i.Name {
				t.Errorf("Default includes the loopback %s", name)
			}
		}
		return
	}
	t.Fatalf("no loopback in %+v", list)
}

func TestLinkUp(t *testing.T) {
	for _, tc := range []struct {
		flags net.Flags
		want  bool
	}{
		{net.FlagUp | net.FlagRunning | net.FlagBroadcast, true},
		{net.FlagUp | net.FlagBroadcast, false},      // no carrier
		{net.FlagRunning | net.FlagBroadcast, false}, // administratively down
		{0, false},
	} {
		if got := (Interface{Name: "eth0", Flags: tc.flags}).LinkUp(); got != tc.want {
			t.Errorf("LinkUp with flags %v = %t, want %t", tc.flags, got, tc.want)
		}
	}
}

func TestKernelAnswers(t *testing.T) {
	vip, host, own, other := netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.11"),
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.0.0.99")
	st := ARPState{
		Addrs: map[netip.Addr]AddrPlace{
			vip:  {Iface: "kube-ipvs0"},
			host: {Iface: "lo", HostScope: true},
			own:  {Iface: "eth0"},
		},
		Ignore: map[string]int{"eth0": 0, "eth1": 1, "eth2": 2, "eth3": 3, "eth5": 5, "eth8": 8},
	}
	for _, c := range []struct {
		iface string
		want  [4]bool // vip, host, own, other
	}{
		{"eth0", [4]bool{true, true, true, false}},
		{"eth1", [4]bool{false, false, false, false}}, // own sits on eth0, not eth1
		{"eth2", [4]bool{false, false, false, false}},
		{"eth3", [4]bool{true, false, true, false}},
		{"eth5", [4]bool{true, true, true, false}}, // reserved levels answer
		{"eth8", [4]bool{false, false, false, false}},
		{"eth9", [4]bool{true, true, true, false}}, // unknown: the kernel's default
	} {
		for i, ip := range []netip.Addr{vip, host, own, other} {
			if got := st.KernelAnswers(c.iface, ip); got != c.want[i] {
				t.Errorf("KernelAnswers(%s, %s) = %v, want %v", c.iface, ip, got, c.want[i])
			}
		}
	}
	st.Ignore["eth0"] = 1
	if !st.KernelAnswers("eth0", own) || st.KernelAnswers("eth0", vip) {
		t.Errorf("arp_ignore 1: want only the address on the incoming interface answered")
	}
}

// A port of a bond or a bridge has that master; an interface in a VRF
// (or under any other master) has none: it answers for itself.
func TestMasterKinds(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"br0/bridge", "bond0/bonding", "vrf-blue", "port0", "slave0", "eth0", "eth1"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for port, m := range map[string]string{"port0": "br0", "slave0": "bond0", "eth0": "vrf-blue"} {
		if err := os.Symlink(filepath.Join("..", m), filepath.Join(root, port, "master")); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"port0": "br0", "slave0": "bond0", "eth0": "", "eth1": "", "gone": ""} {
		got, err := master(root, name)
		if err != nil || got != want {
			t.Errorf("master(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
}
