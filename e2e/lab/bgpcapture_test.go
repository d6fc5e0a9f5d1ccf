package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseBGPTcpdumpLine(t *testing.T) {
	ap := netip.MustParseAddrPort
	at := time.Unix(1796570453, 992490000)
	tests := []struct {
		name string
		line string
		want BGPSegment
		ok   bool
	}{
		{"keepalive", "1796570453.992490 IP 172.31.255.11.51453 > 172.31.255.1.179: Flags [P.], seq 1973454444:1973454463, ack 3280817362, win 63, options [nop,nop,TS val 2027722705 ecr 3433042792], length 19: BGP",
			BGPSegment{Time: at, Src: ap("172.31.255.11:51453"), Dst: ap("172.31.255.1:179"), Flags: "P.", Len: 19}, true},
		{"IPv6 UPDATE", "1796570453.992490 IP6 fd00:31::12.179 > fd00:31::1.47150: Flags [P.], seq 1:73, ack 1, win 64, options [nop,nop,TS val 1 ecr 2], length 72: BGP",
			BGPSegment{Time: at, Src: ap("[fd00:31::12]:179"), Dst: ap("[fd00:31::1]:47150"), Flags: "P.", Len: 72}, true},
		{"opening SYN", "1796570453.992490 IP 172.31.255.1.40000 > 172.31.255.12.179: Flags [S], seq 1, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
			BGPSegment{Time: at, Src: ap("172.31.255.1:40000"), Dst: ap("172.31.255.12:179"), Flags: "S", Len: 0}, true},
		{"tcpdump's own line", "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes", BGPSegment{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseBGPTcpdumpLine(tt.line)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("segment (-want +got):\n%s", diff)
			}
		})
	}
	if s, _ := ParseBGPTcpdumpLine(tests[0].line); s.Message() || s.Opening() {
		t.Errorf("a KEEPALIVE counted as a message or an opening: %+v", s)
	}
	if s, _ := ParseBGPTcpdumpLine(tests[1].line); !s.Message() {
		t.Errorf("an UPDATE not counted as a message: %+v", s)
	}
	if s, _ := ParseBGPTcpdumpLine(tests[2].line); !s.Opening() {
		t.Errorf("a SYN not counted as an opening: %+v", s)
	}
}

func TestSessionOpening(t *testing.T) {
	ap := netip.MustParseAddrPort
	node, router := netip.MustParseAddr("172.31.255.11"), netip.MustParseAddr("172.31.255.1")
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	seg := func(ms int, src, dst, flags string, n int) BGPSegment {
		return BGPSegment{Time: at(ms), Src: ap(src), Dst: ap(dst), Flags: flags, Len: n}
	}
	// Before t0 an old session; the router's SYN at 300 ms is refused;
	// the speaker opens the session that carries its OPEN at 1,400 ms.
	segs := []BGPSegment{
		seg(-500, "172.31.255.1:40000", "172.31.255.11:179", "S", 0),
		seg(-400, "172.31.255.11:179", "172.31.255.1:40000", "P.", 60),
		seg(300, "172.31.255.1:40001", "172.31.255.11:179", "S", 0),
		seg(300, "172.31.255.11:179", "172.31.255.1:40001", "R.", 0),
		seg(1400, "172.31.255.11:50000", "172.31.255.1:179", "S", 0),
		seg(1401, "172.31.255.1:179", "172.31.255.11:50000", "S.", 0),
		seg(1402, "172.31.255.11:50000", "172.31.255.1:179", "P.", 19),
		seg(1403, "172.31.255.11:50000", "172.31.255.1:179", "P.", 57),
	}
	by, when, ok := sessionOpening(segs, t0, node)
	if !ok || by != node || when != 1400*time.Millisecond {
		t.Errorf("sessionOpening = %v, %v, %v; want the speaker at 1.4s", by, when, ok)
	}
	// The same with the router's SYN answered instead.
	segs = []BGPSegment{
		seg(1900, "172.31.255.1:40002", "172.31.255.11:179", "S", 0),
		seg(1901, "172.31.255.11:179", "172.31.255.1:40002", "S.", 0),
		seg(1903, "172.31.255.11:179", "172.31.255.1:40002", "P.", 57),
	}
	if by, when, ok = sessionOpening(segs, t0, node); !ok || by != router || when != 1900*time.Millisecond {
		t.Errorf("sessionOpening = %v, %v, %v; want the router at 1.9s", by, when, ok)
	}
	if _, _, ok = sessionOpening(segs[:2], t0, node); ok {
		t.Error("a session with no message yet was found")
	}
}

func TestLastAddrs(t *testing.T) {
	got := lastAddrs(netip.MustParsePrefix("172.31.132.0/24"), 3)
	want := []netip.Addr{netip.MustParseAddr("172.31.132.253"), netip.MustParseAddr("172.31.132.254"), netip.MustParseAddr("172.31.132.255")}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("IPv4 (-want +got):\n%s", diff)
	}
	got = lastAddrs(netip.MustParsePrefix("fd00:34::/118"), 2)
	want = []netip.Addr{netip.MustParseAddr("fd00:34::3fe"), netip.MustParseAddr("fd00:34::3ff")}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("IPv6 (-want +got):\n%s", diff)
	}
}
