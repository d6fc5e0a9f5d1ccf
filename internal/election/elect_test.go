package election

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ip returns the i-th test address: 10.0.0.0 + i.
func ip(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
}

// ips returns ip(from) .. ip(to) inclusive.
func ips(from, to int) []netip.Addr {
	var out []netip.Addr
	for i := from; i <= to; i++ {
		out = append(out, ip(i))
	}
	return out
}

// cands gives every address of addrs the candidate list nodes.
func cands(m map[netip.Addr][]string, addrs []netip.Addr, nodes ...string) map[netip.Addr][]string {
	if m == nil {
		m = make(map[netip.Addr][]string)
	}
	for _, a := range addrs {
		m[a] = nodes
	}
	return m
}

// owners gives every address of addrs the owner node.
func owners(m map[netip.Addr]string, addrs []netip.Addr, node string) map[netip.Addr]string {
	if m == nil {
		m = make(map[netip.Addr]string)
	}
	for _, a := range addrs {
		m[a] = node
	}
	return m
}

// at returns claims on addrs, all taken over at epoch.
func at(epoch int64, addrs ...netip.Addr) []Claim {
	out := make([]Claim, len(addrs))
	for i, a := range addrs {
		out[i] = Claim{IP: a, Epoch: epoch}
	}
	return out
}

// hashWinner returns whichever of nodes has the highest Score for a.
func hashWinner(a netip.Addr, nodes ...string) string {
	best := nodes[0]
	for _, n := range nodes[1:] {
		if Score(a, n) > Score(a, best) {
			best = n
		}
	}
	return best
}

func TestElect(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	splitWant := make(map[netip.Addr]string)
	for _, a := range ips(1, 10) {
		splitWant[a] = hashWinner(a, "a", "b")
	}
	// Every IP claimed by both a and b, the score winner's claim older:
	// the score loser owns them all.
	staleClaims := map[string][]Claim{}
	staleWant := make(map[netip.Addr]string)
	for _, a := range ips(1, 10) {
		w, l := "a", "b"
		if hashWinner(a, "a", "b") == "b" {
			w, l = l, w
		}
		staleClaims[w] = append(staleClaims[w], Claim{IP: a, Epoch: 100})
		staleClaims[l] = append(staleClaims[l], Claim{IP: a, Epoch: 101})
		staleWant[a] = l
	}
	// sig is an address that a would win on the score.
	sig := ip(1)
	for i := 1; hashWinner(sig, "a", "b") != "a"; i++ {
		sig = ip(i)
	}

	tests := []struct {
		name string
		in   Input
		want map[netip.Addr]string
	}{
		{
			name: "nothing",
			want: map[netip.Addr]string{},
		},
		{
			name: "no candidates: absent",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): nil, ip(2): {}, ip(3): {""}},
				Claims:     map[string][]Claim{"a": at(100, ip(1), ip(2), ip(3))},
			},
			want: map[netip.Addr]string{},
		},
		{
			name: "one candidate",
			in:   Input{Candidates: map[netip.Addr][]string{ip(1): {"a"}, v6: {"b"}}},
			want: map[netip.Addr]string{ip(1): "a", v6: "b"},
		},
		{
			name: "one candidate wins over a claiming non-candidate",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a"}, ip(2): {"b"}},
				Claims:     map[string][]Claim{"b": at(100, ip(1), ip(2))},
			},
			want: map[netip.Addr]string{ip(1): "a", ip(2): "b"},
		},
		{
			// ip1's only claim is by c, not a candidate: ip1 is placed as
			// unclaimed, on b (load 0) rather than a (load 1 from ip2).
			name: "claims by non-candidates ignored",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}, ip(2): {"a"}},
				Claims:     map[string][]Claim{"c": at(200, ip(1)), "a": at(100, ip(2))},
			},
			want: map[netip.Addr]string{ip(1): "b", ip(2): "a"},
		},
		{
			// a's claims on addresses nobody is a candidate for carry no
			// load; counted, they would push ip1 to b.
			name: "claims of addresses without candidates carry no load",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}, ip(2): {"b"}},
				Claims:     map[string][]Claim{"a": at(100, ip(8), ip(9)), "b": at(100, ip(2))},
			},
			want: map[netip.Addr]string{ip(1): "a", ip(2): "b"},
		},
		{
			name: "a claim keeps the IP on a loaded node",
			in: Input{
				Candidates: cands(nil, ips(1, 4), "a", "b"),
				Claims:     map[string][]Claim{"a": at(100, ips(1, 4)...)},
			},
			want: owners(nil, ips(1, 4), "a"),
		},
		{
			name: "two claimants, equally new: the hash winner",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b", "c"}},
				Claims:     map[string][]Claim{"a": at(100, ip(1)), "b": at(100, ip(1))},
			},
			want: map[netip.Addr]string{ip(1): hashWinner(ip(1), "a", "b")},
		},
		{
			name: "a stale claim loses to a newer one whatever the score",
			in: Input{
				Candidates: cands(nil, ips(1, 10), "a", "b", "c"),
				Claims:     staleClaims,
			},
			want: staleWant,
		},
		{
			name: "split brain healed, claims equally new: every IP to its hash winner",
			in: Input{
				Candidates: cands(nil, ips(1, 10), "a", "b", "c"),
				Claims:     map[string][]Claim{"a": at(100, ips(1, 10)...), "b": at(100, ips(1, 10)...)},
			},
			want: splitWant,
		},
		{
			// a took ip1-5 over before b did, b took ip6-10 over before a.
			name: "split brain healed: every IP to its newest claimant",
			in: Input{
				Candidates: cands(nil, ips(1, 10), "a", "b", "c"),
				Claims: map[string][]Claim{
					"a": append(at(100, ips(1, 5)...), at(300, ips(6, 10)...)...),
					"b": append(at(200, ips(1, 5)...), at(200, ips(6, 10)...)...),
				},
			},
			want: owners(owners(nil, ips(1, 5), "b"), ips(6, 10), "a"),
		},
		{
			// a announced sig from t=100, was frozen (SIGSTOP) and declared
			// dead; b took sig over at t=200. a resumes, still claiming it.
			name: "SIGSTOP: the resumed node's old claim loses to the takeover",
			in: Input{
				Candidates: map[netip.Addr][]string{sig: {"a", "b"}},
				Claims:     map[string][]Claim{"a": at(100, sig), "b": at(200, sig)},
			},
			want: map[netip.Addr]string{sig: "b"},
		},
		{
			name: "a node claiming an IP twice counts with its newest claim",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}, ip(2): {"a", "b"}},
				Claims: map[string][]Claim{
					"a": {{IP: ip(1), Epoch: 300}, {IP: ip(1), Epoch: 100}, {IP: ip(2), Epoch: 100}, {IP: ip(2), Epoch: 300}},
					"b": at(200, ip(1), ip(2)),
				},
			},
			want: map[netip.Addr]string{ip(1): "a", ip(2): "a"},
		},
		{
			name: "epochs compare as signed integers",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}, ip(2): {"a", "b"}},
				Claims: map[string][]Claim{
					"a": {{IP: ip(1), Epoch: math.MinInt64}, {IP: ip(2), Epoch: math.MaxInt64}},
					"b": at(-1, ip(1), ip(2)),
				},
			},
			want: map[netip.Addr]string{ip(1): "b", ip(2): "a"},
		},
		{
			name: "a newer claim by a non-candidate is ignored",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}},
				Claims:     map[string][]Claim{"a": at(100, ip(1)), "c": at(900, ip(1))},
			},
			want: map[netip.Addr]string{ip(1): "a"},
		},
		{
			// Before: a owned ip1-2, b ip4, c ip5-7. a is gone; ip1 and
			// ip2 go to b, the least loaded survivor, one at a time.
			name: "failover to the least-loaded survivor",
			in: Input{
				Candidates: cands(cands(nil, ips(1, 2), "b", "c"), ips(4, 7), "a", "b", "c"),
				Claims:     map[string][]Claim{"b": at(100, ip(4)), "c": at(100, ips(5, 7)...)},
			},
			want: owners(owners(nil, []netip.Addr{ip(1), ip(2), ip(4)}, "b"), ips(5, 7), "c"),
		},
		{
			// a restarted: it claims nothing.
			name: "failback: the restarted owner gets nothing back",
			in: Input{
				Candidates: cands(cands(nil, ips(1, 2), "a", "b", "c"), ips(4, 7), "a", "b", "c"),
				Claims:     map[string][]Claim{"b": append(at(200, ip(1), ip(2)), at(100, ip(4))...), "c": at(100, ips(5, 7)...)},
			},
			want: owners(owners(nil, []netip.Addr{ip(1), ip(2), ip(4)}, "b"), ips(5, 7), "c"),
		},
		{
			// a was frozen: it resumes still claiming ip1-2 from t=50.
			name: "failback: the resumed owner gets nothing back",
			in: Input{
				Candidates: cands(cands(nil, ips(1, 2), "a", "b", "c"), ips(4, 7), "a", "b", "c"),
				Claims: map[string][]Claim{
					"a": at(50, ips(1, 2)...),
					"b": append(at(200, ip(1), ip(2)), at(100, ip(4))...),
					"c": at(100, ips(5, 7)...),
				},
			},
			want: owners(owners(nil, []netip.Addr{ip(1), ip(2), ip(4)}, "b"), ips(5, 7), "c"),
		},
		{
			name: "new IPs go to the returned node until level",
			in: Input{
				Candidates: cands(cands(cands(nil, ips(1, 2), "a", "b", "c"), ips(4, 7), "a", "b", "c"), ips(8, 10), "c", "b", "a"),
				Claims:     map[string][]Claim{"b": append(at(200, ip(1), ip(2)), at(100, ip(4))...), "c": at(100, ips(5, 7)...)},
			},
			want: owners(owners(owners(nil, []netip.Addr{ip(1), ip(2), ip(4)}, "b"), ips(5, 7), "c"), ips(8, 10), "a"),
		},
		{
			// ip2 has one candidate and is placed first, so ip1 goes to b.
			// In plain address order ip1 could take a and leave b idle.
			name: "fewest candidates placed first",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}, ip(2): {"a"}},
			},
			want: map[netip.Addr]string{ip(1): "b", ip(2): "a"},
		},
		{
			name: "duplicates and empty names ignored",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "a", "", "b", "a"}},
				Claims:     map[string][]Claim{"a": at(100, ip(1), ip(1)), "": at(200, ip(1))},
			},
			want: map[netip.Addr]string{ip(1): "a"},
		},
		{
			// Zones are odd for Service IPs but must not confuse the
			// address order or the claim lookup.
			name: "addresses differing only by zone are distinct",
			in: Input{
				Candidates: map[netip.Addr][]string{
					netip.MustParseAddr("fe80::1"):      {"a", "b"},
					netip.MustParseAddr("fe80::1%eth0"): {"a", "b"},
					netip.MustParseAddr("fe80::1%eth1"): {"a", "b"},
					netip.MustParseAddr("fe80::2"):      {"b"},
				},
				Claims: map[string][]Claim{
					"a": at(100, netip.MustParseAddr("fe80::1%eth1"), netip.MustParseAddr("fe80::1%eth9")),
					"b": at(100, netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::2")),
				},
			},
			want: map[netip.Addr]string{
				netip.MustParseAddr("fe80::1"):      "a", // placed: a has 1, b has 2
				netip.MustParseAddr("fe80::1%eth0"): "b",
				netip.MustParseAddr("fe80::1%eth1"): "a",
				netip.MustParseAddr("fe80::2"):      "b",
			},
		},
		{
			// Nonsense from the caller, but it must not break the order
			// (the zero Addr sorts before IPv4, IPv6 after).
			name: "the zero address among IPv4 and IPv6",
			in: Input{
				Candidates: map[netip.Addr][]string{{}: {"a", "b"}, ip(1): {"a"}, v6: {"a", "b"}, ip(2): {"b"}},
				Claims:     map[string][]Claim{"b": at(100, netip.Addr{}, v6)},
			},
			want: map[netip.Addr]string{{}: "b", ip(1): "a", v6: "b", ip(2): "b"},
		},
		{
			name: "IPv4 and IPv6 elected alike",
			in: Input{
				Candidates: map[netip.Addr][]string{ip(1): {"a", "b"}, v6: {"a", "b"}},
				Claims:     map[string][]Claim{"b": at(100, ip(1), v6)},
			},
			want: map[netip.Addr]string{ip(1): "b", v6: "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Elect(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Elect() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got, refElect(tc.in)); diff != "" {
				t.Errorf("Elect() differs from the reference (-got +ref):\n%s", diff)
			}
		})
	}
}

func TestScoreIsFixed(t *testing.T) {
	// These values are part of the contract between speakers of different
	// versions: if this test fails, the hash changed. Do not update the
	// values; restore the hash.
	tests := []struct {
		ip   string
		node string
		want uint64
	}{
		{"10.0.0.1", "node-a", 0x78b18d1bf5ed367b},
		{"10.0.0.1", "node-b", 0x6157c08a2bed1e90},
		{"192.168.1.200", "worker-3.example.com", 0x3c2b0dff03db3b97},
		{"2001:db8::1", "node-a", 0x062755ee18a2030e},
		{"::ffff:10.0.0.1", "node-a", 0x78b18d1bf5ed367b}, // IPv4-mapped scores as IPv4
		{"10.0.0.1", "", 0x350190dd8a982e66},
	}
	for _, tc := range tests {
		t.Run(tc.ip+"/"+tc.node, func(t *testing.T) {
			if got := Score(netip.MustParseAddr(tc.ip), tc.node); got != tc.want {
				t.Errorf("Score(%s, %q) = %#x, want %#x", tc.ip, tc.node, got, tc.want)
			}
		})
	}
}

func TestScoreUsesFNV1a(t *testing.T) {
	for _, s := range []string{"10.0.0.1", "2001:db8::42", "0.0.0.0"} {
		a := netip.MustParseAddr(s)
		h := fnv.New64a()
		b := a.As16()
		h.Write(b[:])
		if got, want := addrKey(a), h.Sum64(); got != want {
			t.Errorf("addrKey(%s) = %#x, want FNV-1a %#x", s, got, want)
		}
	}
	for _, s := range []string{"", "node-a", "worker-3.example.com"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := nodeKey(s), mix(h.Sum64()); got != want {
			t.Errorf("nodeKey(%q) = %#x, want mix(FNV-1a) %#x", s, got, want)
		}
	}
}

func TestSpread(t *testing.T) {
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("node-%d", i)
		}
		return out
	}
	all := ips(1, 300)

	tests := []struct {
		name string
		in   Input
		// fixed owners that must not move, and the nodes whose counts
		// must be within 1.3x of each other (all when nil).
		fixed    map[netip.Addr]string
		balanced []string
		want     map[string]int // exact counts, when set
	}{
		{name: "1 node", in: Input{Candidates: cands(nil, all, names(1)...)}, want: map[string]int{"node-0": 300}},
		{name: "2 nodes", in: Input{Candidates: cands(nil, all, names(2)...)}},
		{name: "3 nodes", in: Input{Candidates: cands(nil, all, names(3)...)}},
		{name: "5 nodes", in: Input{Candidates: cands(nil, all, names(5)...)}},
		{
			name: "3 nodes, a third already claimed by one node",
			in: Input{
				Candidates: cands(nil, all, names(3)...),
				Claims:     map[string][]Claim{"node-0": at(100, ips(101, 200)...)},
			},
			fixed: owners(nil, ips(101, 200), "node-0"),
			want:  map[string]int{"node-0": 100, "node-1": 100, "node-2": 100},
		},
		{
			// Claims are never moved: node-0 keeps its 150, the rest
			// spreads evenly over the other two.
			name: "3 nodes, half claimed by one node",
			in: Input{
				Candidates: cands(nil, all, names(3)...),
				Claims:     map[string][]Claim{"node-0": at(100, ips(1, 150)...)},
			},
			fixed: owners(nil, ips(1, 150), "node-0"),
			want:  map[string]int{"node-0": 150, "node-1": 75, "node-2": 75},
		},
		{
			// node-2 is a candidate only for the first 100 addresses
			// (e.g. the only Services with a local endpoint there).
			name: "3 nodes, one a candidate for a third of the IPs",
			in: Input{
				Candidates: cands(cands(nil, ips(1, 100), "node-0", "node-1", "node-2"), ips(101, 300), "node-0", "node-1"),
			},
			want: map[string]int{"node-0": 100, "node-1": 100, "node-2": 100},
		},
		{
			name: "3 nodes, one a candidate for a tenth of the IPs",
			in: Input{
				Candidates: cands(cands(nil, ips(271, 300), "node-0", "node-1", "node-2"), ips(1, 270), "node-0", "node-1"),
			},
			balanced: []string{"node-0", "node-1"},
			want:     map[string]int{"node-0": 135, "node-1": 135, "node-2": 30},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Elect(tc.in)
			if len(got) != len(all) {
				t.Fatalf("Elect() owns %d IPs, want %d", len(got), len(all))
			}
			count := make(map[string]int)
			for _, o := range got {
				count[o]++
			}
			for a, o := range tc.fixed {
				if got[a] != o {
					t.Errorf("claimed %s moved from %s to %s", a, o, got[a])
				}
			}
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, count); diff != "" {
					t.Errorf("counts mismatch (-want +got):\n%s", diff)
				}
			}
			if tc.fixed != nil && tc.balanced == nil {
				return // claims may make perfect balance impossible
			}
			bal := tc.balanced
			if bal == nil {
				for n := range count {
					bal = append(bal, n)
				}
			}
			lo, hi := len(all), 0
			for _, n := range bal {
				lo, hi = min(lo, count[n]), max(hi, count[n])
			}
			if float64(hi) > 1.3*float64(lo) {
				t.Errorf("busiest node owns %d, least busy %d: more than 1.3x (%v)", hi, lo, count)
			}
		})
	}
}

// ByScore gives each IP its best-scoring candidate, ignoring empty names
// and duplicates and whatever the order, and an IP without candidate none.
func TestByScore(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	best := ""
	for _, n := range []string{"n1", "n2", "n3"} {
		if best == "" || Score(ip, n) > Score(ip, best) {
			best = n
		}
	}
	for _, cands := range [][]string{{"n1", "n2", "n3"}, {"n3", "", "n2", "n1", "n2"}} {
		got := ByScore(map[netip.Addr][]string{ip: cands, netip.MustParseAddr("10.0.0.2"): {""}, netip.MustParseAddr("10.0.0.3"): nil})
		if len(got) != 1 || got[ip] != best {
			t.Errorf("ByScore with %q = %v, want only %s: %s", cands, got, ip, best)
		}
	}
}
