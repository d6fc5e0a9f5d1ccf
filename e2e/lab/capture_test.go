package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTcpdumpLine(t *testing.T) {
	ip := netip.MustParseAddr
	at := time.Unix(1795319574, 46465000)
	tests := []struct {
		name string
		line string
		want L2Packet
		ok   bool
	}{
		{"gratuitous ARP request", "1795319574.046465 02:48:4c:00:01:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 172.31.255.190 (ff:ff:ff:ff:ff:ff) tell 172.31.255.190, length 28",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:01:02", DstMAC: "ff:ff:ff:ff:ff:ff", Kind: ARPRequest, Sender: ip("172.31.255.190"), Target: ip("172.31.255.190"), Gratuitous: true}, true},
		{"gratuitous ARP reply", "1795319574.046465 02:48:4c:00:01:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Reply 172.31.255.190 is-at 02:48:4c:00:01:02, length 28",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:01:02", DstMAC: "ff:ff:ff:ff:ff:ff", Kind: ARPReply, Sender: ip("172.31.255.190"), Gratuitous: true}, true},
		{"ARP request of a client", "1795319574.046465 02:48:4c:00:00:64 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 172.31.255.190 tell 172.31.255.100, length 28",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:00:64", DstMAC: "ff:ff:ff:ff:ff:ff", Kind: ARPRequest, Sender: ip("172.31.255.100"), Target: ip("172.31.255.190")}, true},
		{"unicast ARP reply", "1795319574.046465 02:48:4c:00:01:02 > 02:48:4c:00:00:64, ethertype ARP (0x0806), length 42: Reply 172.31.255.190 is-at 02:48:4c:00:01:02, length 28",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:01:02", DstMAC: "02:48:4c:00:00:64", Kind: ARPReply, Sender: ip("172.31.255.190")}, true},
		{"unsolicited NA", "1795319574.046465 02:48:4c:00:01:03 > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), length 86: fe80::48:4cff:fe00:103 > ff02::1: ICMP6, neighbor advertisement, tgt is fd00:31::190, length 32",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:01:03", DstMAC: "33:33:00:00:00:01", Kind: NeighborAdvertise, Target: ip("fd00:31::190"), Gratuitous: true}, true},
		{"solicited NA", "1795319574.046465 02:48:4c:00:01:03 > 02:48:4c:00:00:64, ethertype IPv6 (0x86dd), length 86: fe80::48:4cff:fe00:103 > fd00:31::100: ICMP6, neighbor advertisement, tgt is fd00:31::190, length 32",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:01:03", DstMAC: "02:48:4c:00:00:64", Kind: NeighborAdvertise, Target: ip("fd00:31::190")}, true},
		{"NS", "1795319574.046465 02:48:4c:00:00:64 > 33:33:ff:00:01:90, ethertype IPv6 (0x86dd), length 86: fd00:31::100 > ff02::1:ff00:190: ICMP6, neighbor solicitation, who has fd00:31::190, length 32",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:00:64", DstMAC: "33:33:ff:00:01:90", Kind: NeighborSolicit, Target: ip("fd00:31::190")}, true},
		{"router solicitation", "1795319574.046465 02:48:4c:00:00:64 > 33:33:00:00:00:02, ethertype IPv6 (0x86dd), length 70: fe80::1 > ff02::2: ICMP6, router solicitation, length 16",
			L2Packet{Time: at, SrcMAC: "02:48:4c:00:00:64", DstMAC: "33:33:00:00:00:02", Kind: OtherL2PacketKind}, true},
		{"tcpdump's own line", "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes", L2Packet{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseTcpdumpLine(tt.line)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestFirstAnnouncement(t *testing.T) {
	vip := netip.MustParseAddr("172.31.255.190")
	t0 := time.Unix(100, 0)
	pk := func(sec int64, mac string, grat bool, sender string) L2Packet {
		return L2Packet{Time: time.Unix(sec, 0), SrcMAC: mac, Kind: ARPReply, Sender: netip.MustParseAddr(sender), Gratuitous: grat}
	}
	packets := []L2Packet{
		pk(99, "02:00:00:00:00:02", true, "172.31.255.190"),   // before t0
		pk(101, "02:00:00:00:00:02", false, "172.31.255.190"), // not gratuitous
		pk(102, "02:00:00:00:00:02", true, "172.31.255.191"),  // another address
		pk(103, "02:00:00:00:00:03", true, "172.31.255.190"),  // another node
		pk(104, "02:00:00:00:00:02", true, "172.31.255.190"),
	}
	p, ok := FirstAnnouncement(packets, vip, "02:00:00:00:00:02", t0)
	if !ok || p.Time != time.Unix(104, 0) {
		t.Errorf("FirstAnnouncement = %v, %v; want the packet at 104", p, ok)
	}
	if _, ok := FirstAnnouncement(packets, vip, "02:00:00:00:00:09", t0); ok {
		t.Error("found an announcement from a MAC that sent none")
	}
}

func TestAnnouncementFilter(t *testing.T) {
	if got, want := AnnouncementFilter(netip.MustParseAddr("172.31.255.190")), "arp and arp[14:4] = 0xac1fffbe"; got != want {
		t.Errorf("IPv4: %q, want %q", got, want)
	}
	want := "icmp6 and ip6[40] = 136 and ip6[48:4] = 0xfd000031 and ip6[52:4] = 0x00000000 and ip6[56:4] = 0x00000000 and ip6[60:4] = 0x00000190"
	if got := AnnouncementFilter(netip.MustParseAddr("fd00:31::190")); got != want {
		t.Errorf("IPv6: %q, want %q", got, want)
	}
}

func TestParseProbeLine(t *testing.T) {
	r, ok := ParseProbeLine("1000 2000 ok n2")
	if !ok || !r.OK || r.Body != "n2" || r.Start != time.Unix(0, 1000) || r.End != time.Unix(0, 2000) {
		t.Errorf("ok line: %+v, %v", r, ok)
	}
	r, ok = ParseProbeLine("1000 3000 err context deadline exceeded")
	if !ok || r.OK || r.Body != "context deadline exceeded" {
		t.Errorf("err line: %+v, %v", r, ok)
	}
	for _, bad := range []string{"", "x 1 ok", "1 2 maybe n1"} {
		if _, ok := ParseProbeLine(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseAddrRange(t *testing.T) {
	ip := netip.MustParseAddr
	tests := map[string][2]netip.Addr{
		"172.31.0.0/17":                 {ip("172.31.0.0"), ip("172.31.127.255")},
		"172.31.255.190-172.31.255.199": {ip("172.31.255.190"), ip("172.31.255.199")},
		"fd00:31::190-fd00:31::199":     {ip("fd00:31::190"), ip("fd00:31::199")},
		"fd00:34::/112":                 {ip("fd00:34::"), ip("fd00:34::ffff")},
	}
	for in, want := range tests {
		got, ok := parseAddrRange(in)
		if !ok || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, ok, want)
		}
	}
}

func TestStatusWrites(t *testing.T) {
	before := map[string]float64{"servicel2statuses POST": 10, "servicel2statuses/status PUT": 10, "events POST": 5, "services LIST": 3}
	after := map[string]float64{"servicel2statuses POST": 15, "servicel2statuses/status PUT": 16, "servicel2statuses DELETE": 2,
		"events POST": 9, "events PATCH": 1, "services LIST": 30, "servicel2statuses WATCH": 4}
	st, ev := statusWrites(before, after)
	if st != 13 || ev != 5 {
		t.Errorf("statusWrites = %d, %d; want 13, 5", st, ev)
	}
	labels := `code="201",subresource="status",group="herald.dev",resource="servicel2statuses",scope="resource",verb="PUT"`
	if promLabel(labels, "resource") != "servicel2statuses" || promLabel(labels, "subresource") != "status" || promLabel(labels, "verb") != "PUT" {
		t.Errorf("promLabel misreads %s", labels)
	}
}
