package memberlist

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/election"
)

var msgOpts = cmp.Options{
	cmp.AllowUnexported(message{}, wireRecord{}, wireDelta{}, version{}),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func v6(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
	}
	return out
}

func TestWireRoundTrip(t *testing.T) {
	mixedIPs := canonicalIPs(append(addrs(0, 3), mustAddr("10.9.0.1"), mustAddr("255.255.255.255"), mustAddr("0.0.0.0"),
		mustAddr("2001:db8::1"), mustAddr("2001:db8::2"), mustAddr("fe80::1"), mustAddr("::"),
		mustAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
	// Epochs in runs, apart, backwards, and at the extremes (the
	// differences wrap).
	epochs := []int64{t1, t1, t1, t1 + 60_000, t1 - 7*24*3600_000, 0, -1, math.MinInt64, math.MaxInt64, math.MinInt64, t1}
	mixed := make([]election.Claim, len(mixedIPs))
	for i, a := range mixedIPs {
		mixed[i] = election.Claim{IP: a, Epoch: epochs[i]}
	}
	rec := wireRecord{name: "worker-1", v: version{epoch: 1_700_000_000_000_000_000, seq: 42}, claims: mixed}
	tests := []struct {
		name string
		msg  []byte
		want message
	}{
		{"full", encodeFull(rec), message{kind: kindFull, rec: rec}},
		{"full, no claims", encodeFull(wireRecord{name: "n"}), message{kind: kindFull, rec: wireRecord{name: "n"}}},
		{"reply", encodeReply(rec), message{kind: kindReply, rec: rec}},
		{
			"delta",
			encodeDelta(wireDelta{name: "n", base: 6, v: version{9, 7}, added: mixed[:4], removed: mixedIPs[6:]}),
			message{kind: kindDelta, delta: wireDelta{name: "n", base: 6, v: version{9, 7}, added: mixed[:4], removed: mixedIPs[6:]}},
		},
		{"notice", encodeNotice("n", version{3, 4}), message{kind: kindNotice, name: "n", v: version{3, 4}}},
		{"pull", encodePull("asker", version{5, 6}), message{kind: kindPull, name: "asker", v: version{5, 6}}},
		{"leave", encodeLeave("leaver", version{7, 8}), message{kind: kindLeave, name: "leaver", v: version{7, 8}}},
		{
			"state",
			encodeState("sender", []wireRecord{rec, {name: "other", v: version{1, 1}, claims: at(t1, v6(300)...)}, {name: "empty"}}),
			message{kind: kindState, name: "sender", records: []wireRecord{rec, {name: "other", v: version{1, 1}, claims: at(t1, v6(300)...)}, {name: "empty"}}},
		},
		{"state, empty", encodeState("sender", nil), message{kind: kindState, name: "sender"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decode(tc.msg)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, msgOpts); diff != "" {
				t.Errorf("decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWireBytes pins the format: speakers of different versions must
// understand each other.
func TestWireBytes(t *testing.T) {
	got := encodeFull(wireRecord{
		name: "a",
		v:    version{epoch: 300, seq: 2},
		claims: canonical([]election.Claim{
			{IP: mustAddr("10.0.0.1"), Epoch: t1},
			{IP: mustAddr("10.0.0.2"), Epoch: t1},
			{IP: mustAddr("10.0.0.5"), Epoch: t1},
			{IP: mustAddr("2001:db8::1"), Epoch: t1 + 1000},
			{IP: mustAddr("2001:db8::102"), Epoch: t1 - 1000},
		}),
	})
	want := []byte{
		// format version, kind
		2, kindFull,
		// name "a"
		1, 'a',
		// epoch 300, seq 2
		0xac, 0x02, 2,
		// three IPv4: 10.0.0.1 (0x0a000001), then gaps 1 and 3
		3, 0x81, 0x80, 0x80, 0x50, 0, 2,
		// two IPv6: 2001:db8::1 sharing nothing, 2001:db8::102 sharing 14 bytes
		2,
		0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		14, 0x01, 0x02,
		// claim epochs, zigzag varints of the differences: t1 (2026-01-01
		// in Unix ms), +0, +0, +1000, -2000
		0x80, 0xa0, 0xd5, 0xed, 0xee, 0x66, 0, 0, 0xd0, 0x0f, 0x9f, 0x1f,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encodeFull =\n%x\nwant\n%x", got, want)
	}

	got = encodeDelta(wireDelta{
		name: "a", base: 1, v: version{epoch: 300, seq: 2},
		added:   []election.Claim{{IP: mustAddr("10.0.0.1"), Epoch: t1}, {IP: mustAddr("10.0.0.2"), Epoch: t1}},
		removed: []netip.Addr{mustAddr("10.0.0.7")},
	})
	want = []byte{
		2, kindDelta,
		1, 'a',
		// epoch 300, base 1, seq 2
		0xac, 0x02, 1, 2,
		// added: two IPv4 in a run, no IPv6, epochs t1 and +0
		2, 0x81, 0x80, 0x80, 0x50, 0, 0,
		0x80, 0xa0, 0xd5, 0xed, 0xee, 0x66, 0,
		// removed: one IPv4 (0x0a000007), no IPv6, no epochs
		1, 0x87, 0x80, 0x80, 0x50, 0,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encodeDelta =\n%x\nwant\n%x", got, want)
	}
}

func TestWireSizes(t *testing.T) {
	rec := func(claims []election.Claim) wireRecord {
		return wireRecord{name: "worker-007.cluster.example", v: version{epoch: 1_800_000_000_000_000_000, seq: 123456}, claims: claims}
	}
	every3 := make([]netip.Addr, 0, 10000) // what one of three nodes owns
	for _, a := range addrs(0, 30000) {
		if a.As4()[3]%3 == 0 {
			every3 = append(every3, a)
		}
	}
	// Each IP taken over on its own, minutes apart in address order, or
	// at random times over a year.
	minutes := at(0, addrs(0, 10000)...)
	scattered := at(0, addrs(0, 10000)...)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range minutes {
		minutes[i].Epoch = t1 + int64(i)*60_000
		scattered[i].Epoch = t1 - r.Int64N(365*24*3600_000)
	}
	tests := []struct {
		name     string
		claims   []election.Claim
		min, max int
	}{
		{"10,000 consecutive IPv4 taken over together", at(t1, addrs(0, 10000)...), 20000, 20100},
		{"every third IPv4 address, taken over together", at(t1, every3...), 2 * len(every3), 2*len(every3) + 100},
		{"10,000 IPv6 in one /112, taken over together", at(t1, v6(10000)...), 30000, 30200},
		{"10,000 consecutive IPv4 taken over a minute apart", minutes, 40000, 40100},
		{"10,000 consecutive IPv4 taken over at random in a year", scattered, 60000, 70000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(encodeFull(rec(tc.claims)))
			t.Logf("%d claims: %d bytes", len(tc.claims), n)
			if n < tc.min || n > tc.max {
				t.Errorf("encoded size %d, want %d..%d", n, tc.min, tc.max)
			}
		})
	}
	// The largest run of IPv4 claims taken over together that still goes
	// out as one gossip message, as the package documentation says.
	fits := 0
	for n := 1; len(encodeFull(rec(at(t1, addrs(0, n)...)))) <= maxGossipMsg; n++ {
		fits = n
	}
	t.Logf("a run of %d IPv4 claims fits one gossip message", fits)
	if fits < 470 {
		t.Errorf("only %d IPv4 claims fit a gossip message, want at least 470", fits)
	}
	// ownMessageLocked's shortcut: a list longer than this never fits.
	if fits*minClaimLen >= maxGossipMsg {
		t.Errorf("%d claims of at least %d bytes fit in %d bytes", fits, minClaimLen, maxGossipMsg)
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := encodeFull(wireRecord{name: "a", v: version{1, 1}, claims: at(t1, addrs(0, 2)...)})
	v1 := slices.Clone(valid)
	v1[0] = 1
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{2}},
		{"format version 1 (claims without epochs)", v1},
		{"format version 1, empty", []byte{1, kindFull, 1, 'a', 1, 1, 0, 0}},
		{"unknown format version", []byte{3, kindFull, 1, 'a', 1, 1, 0, 0}},
		{"unknown kind", []byte{2, 99}},
		{"truncated", valid[:len(valid)-1]},
		{"trailing bytes", append(slices.Clone(valid), 0)},
		{"name too long", append([]byte{2, kindPull, 0x81, 0x08}, make([]byte, 1025+2)...)},
		{"name longer than the message", []byte{2, kindPull, 5, 'a', 1, 1}},
		{"IPv4 count larger than the message", []byte{2, kindFull, 1, 'a', 1, 1, 50, 1, 0, 0}},
		{"IPv4 count leaving no room for the epochs", []byte{2, kindFull, 1, 'a', 1, 1, 2, 5, 0, 0}},
		{"IPv4 beyond 32 bits", []byte{2, kindFull, 1, 'a', 1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0}},
		{"IPv4 gap beyond 32 bits", []byte{2, kindFull, 1, 'a', 1, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0}},
		{"IPv4 gap wrapping 64 bits", []byte{2, kindFull, 1, 'a', 1, 1, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0}},
		{"IPv6 count leaving no room for the epochs", append([]byte{2, kindFull, 1, 'a', 1, 1, 0, 6, 0}, make([]byte, 16)...)},
		{"IPv6 first address shares bytes", append(append([]byte{2, kindFull, 1, 'a', 1, 1, 0, 1, 1}, make([]byte, 15)...), 0)},
		{"IPv6 shares 16 bytes", append(append([]byte{2, kindFull, 1, 'a', 1, 1, 0, 2, 0, 0x20}, make([]byte, 15)...), 16, 0, 0)},
		{"IPv6 not ascending", append(append([]byte{2, kindFull, 1, 'a', 1, 1, 0, 2, 0, 0x20}, make([]byte, 15)...), 15, 0, 0, 0)},
		{"IPv4-mapped in the IPv6 list", []byte{2, kindFull, 1, 'a', 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1, 0}},
		{"claim epoch missing", []byte{2, kindFull, 1, 'a', 1, 1, 1, 5, 0}},
		{"claim epoch not a varint", []byte{2, kindFull, 1, 'a', 1, 1, 1, 5, 0, 0x80}},
		{"claim epoch beyond 64 bits", []byte{2, kindFull, 1, 'a', 1, 1, 1, 5, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"delta removed list with epochs", append(encodeDelta(wireDelta{name: "a", base: 1, v: version{1, 2}, removed: addrs(0, 1)}), 0)},
		{"delta base not before seq", encodeDelta(wireDelta{name: "a", base: 3, v: version{1, 3}})},
		{"state record count larger than the message", []byte{2, kindState, 1, 's', 9, 1, 'a', 1, 1, 0, 0}},
		{"bad uvarint", []byte{2, kindNotice, 1, 'a', 0x80}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := decode(tc.msg); !errors.Is(err, errMalformed) {
				t.Errorf("decode(%x) = %+v, %v; want errMalformed", tc.msg, m, err)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	in := []election.Claim{
		{IP: mustAddr("10.0.0.2"), Epoch: 5}, {IP: mustAddr("::ffff:10.0.0.1"), Epoch: 1}, {Epoch: 9},
		{IP: mustAddr("fe80::1%eth0"), Epoch: 7}, {IP: mustAddr("10.0.0.2"), Epoch: 6}, {IP: mustAddr("2001:db8::1"), Epoch: -3},
		{IP: mustAddr("fe80::1"), Epoch: 2}, {IP: mustAddr("10.0.0.2"), Epoch: 4},
	}
	orig := slices.Clone(in)
	want := []election.Claim{
		{IP: mustAddr("10.0.0.1"), Epoch: 1},
		{IP: mustAddr("10.0.0.2"), Epoch: 6}, // the newest of three
		{IP: mustAddr("2001:db8::1"), Epoch: -3},
		{IP: mustAddr("fe80::1"), Epoch: 7}, // fe80::1%eth0, newer than fe80::1
	}
	if diff := cmp.Diff(want, canonical(in), msgOpts); diff != "" {
		t.Errorf("canonical mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(orig, in, msgOpts); diff != "" {
		t.Errorf("canonical modified its input:\n%s", diff)
	}
}

// canonicalIPs returns the addresses of canonical claims on ips.
func canonicalIPs(ips []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, c := range canonical(at(0, ips...)) {
		out = append(out, c.IP)
	}
	return out
}

func FuzzDecode(f *testing.F) {
	claims := canonical(append(at(t1, addrs(0, 4)...), at(t1+1000, v6(3)...)...))
	rec := wireRecord{name: "n", v: version{7, 8}, claims: claims}
	f.Add(encodeFull(rec))
	f.Add(encodeReply(rec))
	f.Add(encodeDelta(wireDelta{name: "n", base: 1, v: version{7, 2}, added: claims[:3], removed: canonicalIPs(v6(3))}))
	f.Add(encodeNotice("n", version{1, 2}))
	f.Add(encodePull("n", version{1, 2}))
	f.Add(encodeState("s", []wireRecord{rec, {name: "m"}}))
	f.Add(encodeLeave("n", version{3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same message: addresses
		// come out canonical.
		var again []byte
		switch m.kind {
		case kindFull:
			again = encodeFull(m.rec)
		case kindReply:
			again = encodeReply(m.rec)
		case kindDelta:
			again = encodeDelta(m.delta)
		case kindNotice:
			again = encodeNotice(m.name, m.v)
		case kindPull:
			again = encodePull(m.name, m.v)
		case kindState:
			again = encodeState(m.name, m.records)
		case kindLeave:
			again = encodeLeave(m.name, m.v)
		default:
			t.Fatalf("decoded a message of kind %d, which the fuzz test does not know", m.kind)
		}
		m2, err := decode(again)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if diff := cmp.Diff(m, m2, msgOpts); diff != "" {
			t.Fatalf("re-encoding changed the message (-first +second):\n%s", diff)
		}
		for _, claims := range [][]election.Claim{m.rec.claims, m.delta.added} {
			if diff := cmp.Diff(canonical(claims), claims, msgOpts); diff != "" {
				t.Fatalf("decoded claims not canonical:\n%s", diff)
			}
		}
		if diff := cmp.Diff(canonicalIPs(m.delta.removed), m.delta.removed, msgOpts); diff != "" {
			t.Fatalf("decoded removed addresses not canonical:\n%s", diff)
		}
	})
}

func TestNoLinkMeta(t *testing.T) {
	sets := []string{"", "eth1", "eth2 eth3"}
	meta, n := encodeNoLinkMeta(sets, 512)
	if n != 3 || string(meta) != "herald/nolink\n\neth1\neth2 eth3" {
		t.Fatalf("encode = %q, %d", meta, n)
	}
	if got := decodeNoLinkMeta(meta); !slices.Equal(got, sets) {
		t.Errorf("decode = %q, want %q", got, sets)
	}
	// Only whole sets that fit.
	meta, n = encodeNoLinkMeta(sets, len("herald/nolink\n\neth1")+3)
	if n != 2 || !slices.Equal(decodeNoLinkMeta(meta), sets[:2]) {
		t.Errorf("limited encode = %q, %d", meta, n)
	}
	if meta, n = encodeNoLinkMeta(nil, 512); meta != nil || n != 0 {
		t.Errorf("encode(nil) = %q, %d", meta, n)
	}
	if meta, n = encodeNoLinkMeta([]string{"x"}, 3); meta != nil || n != 0 {
		t.Errorf("encode beyond the limit = %q, %d", meta, n)
	}
	for _, other := range []string{"", "herald/leaving", "herald/nolink", "herald/nolinkX\neth0", "something else"} {
		if got := decodeNoLinkMeta([]byte(other)); got != nil {
			t.Errorf("decode(%q) = %q, want nil", other, got)
		}
	}
}
