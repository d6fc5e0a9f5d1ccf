package election

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// benchInput builds 10,000 IPv4 addresses, every node a candidate for
// every address. shared passes one candidate slice for all addresses (as
// a caller computing candidates per advertisement would); otherwise each
// address gets its own copy. claimed adds the claims of a steady state
// (every address claimed by its owner, claim lists sorted by address),
// the common case once speakers have announced; epochs vary (IPs taken
// over at different times) with runs of equal ones (taken over together),
// and every tenth address is also claimed, less recently, by a second
// node (a node resumed after a freeze, or a healed partition).
func benchInput(nodes int, shared, claimed bool) Input {
	names := make([]string, nodes)
	for i := range names {
		names[i] = fmt.Sprintf("worker-%03d.cluster.example", i)
	}
	in := Input{Candidates: make(map[netip.Addr][]string, 10000)}
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		if shared {
			in.Candidates[a] = names
		} else {
			in.Candidates[a] = append([]string(nil), names...)
		}
	}
	if claimed {
		in.Claims = make(map[string][]Claim, nodes)
		for a, o := range Elect(in) {
			i := int(a.As4()[2])<<8 | int(a.As4()[3])
			epoch := int64(1_700_000_000_000 + i/16*1000)
			in.Claims[o] = append(in.Claims[o], Claim{IP: a, Epoch: epoch})
			if i%10 == 0 {
				other := names[(slices.Index(names, o)+1)%nodes]
				in.Claims[other] = append(in.Claims[other], Claim{IP: a, Epoch: epoch - 1})
			}
		}
		for _, l := range in.Claims {
			slices.SortFunc(l, func(x, y Claim) int { return x.IP.Compare(y.IP) }) // as membership.Claims gives them
		}
	}
	return in
}

func BenchmarkElect(b *testing.B) {
	for _, nodes := range []int{3, 100} {
		for _, shared := range []bool{true, false} {
			for _, claimed := range []bool{false, true} {
				name := fmt.Sprintf("ips=10000/nodes=%d/shared=%t/claimed=%t", nodes, shared, claimed)
				b.Run(name, func(b *testing.B) {
					in := benchInput(nodes, shared, claimed)
					b.ReportAllocs()
					for b.Loop() {
						Elect(in)
					}
				})
			}
		}
	}
}
