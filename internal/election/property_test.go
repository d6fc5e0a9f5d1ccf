package election

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// refElect is the rule written as plainly as possible: sets, sorts and
// linear scans. Elect must agree with it on every input.
func refElect(in Input) map[netip.Addr]string {
	cand := make(map[netip.Addr]map[string]bool)
	for a, list := range in.Candidates {
		for _, n := range list {
			if n == "" {
				continue
			}
			if cand[a] == nil {
				cand[a] = make(map[string]bool)
			}
			cand[a][n] = true
		}
	}
	beats := func(a netip.Addr, x, y string) bool { // x better than y by score
		sx, sy := Score(a, x), Score(a, y)
		return sx > sy || sx == sy && x < y
	}
	// newest returns n's newest claim on a.
	newest := func(n string, a netip.Addr) (epoch int64, ok bool) {
		for _, c := range in.Claims[n] {
			if c.IP == a && (!ok || c.Epoch > epoch) {
				epoch, ok = c.Epoch, true
			}
		}
		return epoch, ok
	}
	out := make(map[netip.Addr]string)
	load := make(map[string]int)
	for a, set := range cand {
		best, bestEpoch := "", int64(0)
		for n := range in.Claims {
			ep, ok := newest(n, a)
			if !set[n] || !ok {
				continue
			}
			if best == "" || ep > bestEpoch || ep == bestEpoch && beats(a, n, best) {
				best, bestEpoch = n, ep
			}
		}
		if best != "" {
			out[a] = best
			load[best]++
		}
	}
	var rest []netip.Addr
	for a := range cand {
		if _, ok := out[a]; !ok {
			rest = append(rest, a)
		}
	}
	slices.SortFunc(rest, func(x, y netip.Addr) int {
		return cmp.Or(cmp.Compare(len(cand[x]), len(cand[y])), x.Compare(y))
	})
	for _, a := range rest {
		best := ""
		for n := range cand[a] {
			if best == "" || load[n] < load[best] || load[n] == load[best] && beats(a, n, best) {
				best = n
			}
		}
		out[a] = best
		load[best]++
	}
	return out
}

// randomInput draws a messy input: a few nodes, IPv4 and IPv6 addresses,
// random candidate subsets (some empty, some with duplicates or ""),
// claims on candidate and non-candidate addresses, by live and unknown
// nodes, with duplicates (some with another epoch); epochs are drawn from
// a few values, extremes included, so that equal epochs are common.
func randomInput(r *rand.Rand) Input {
	nodes := make([]string, 1+r.IntN(7))
	for i := range nodes {
		nodes[i] = fmt.Sprintf("n%d", i)
	}
	var addrs []netip.Addr
	for i := range r.IntN(120) {
		if r.IntN(4) == 0 {
			addrs = append(addrs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}))
		} else {
			addrs = append(addrs, ip(i))
		}
	}
	in := Input{Candidates: make(map[netip.Addr][]string), Claims: make(map[string][]Claim)}
	epochs := []int64{math.MinInt64, -1, 0, 1_700_000_000_000, 1_700_000_000_001, math.MaxInt64}
	epoch := func() int64 { return epochs[r.IntN(len(epochs))] }
	// A few shared lists, as a caller computing per advertisement would pass.
	shared := make([][]string, 3)
	for i := range shared {
		for _, n := range nodes {
			if r.IntN(2) == 0 {
				shared[i] = append(shared[i], n)
			}
		}
	}
	for _, a := range addrs {
		if r.IntN(3) == 0 {
			in.Candidates[a] = shared[r.IntN(len(shared))]
			continue
		}
		var list []string
		for _, n := range nodes {
			if r.IntN(3) > 0 {
				list = append(list, n)
			}
		}
		if r.IntN(10) == 0 {
			list = append(list, "")
		}
		if len(list) > 0 && r.IntN(5) == 0 {
			list = append(list, list[0])
		}
		in.Candidates[a] = list
	}
	claimers := append(slices.Clone(nodes), "gone")
	for _, n := range claimers {
		if r.IntN(3) == 0 {
			continue
		}
		var claims []Claim
		for _, a := range addrs {
			if r.IntN(4) == 0 {
				claims = append(claims, Claim{IP: a, Epoch: epoch()})
			}
		}
		if r.IntN(4) == 0 {
			claims = append(claims, Claim{IP: netip.MustParseAddr("192.0.2.1"), Epoch: epoch()}) // candidates nowhere
		}
		if len(claims) > 0 && r.IntN(4) == 0 {
			claims = append(claims, claims[0])
		}
		if len(claims) > 0 && r.IntN(4) == 0 {
			claims = append(claims, Claim{IP: claims[0].IP, Epoch: epoch()})
		}
		in.Claims[n] = claims
	}
	return in
}

// permuted returns a copy of in with fresh maps and every list shuffled
// (shared candidate lists become separate slices).
func permuted(r *rand.Rand, in Input) Input {
	out := Input{Candidates: make(map[netip.Addr][]string), Claims: make(map[string][]Claim)}
	for a, l := range in.Candidates {
		l = slices.Clone(l)
		r.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
		out.Candidates[a] = l
	}
	for n, l := range in.Claims {
		l = slices.Clone(l)
		r.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
		out.Claims[n] = l
	}
	return out
}

func TestElectProperties(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 42))
		in := randomInput(r)
		got := Elect(in)

		for a, list := range in.Candidates {
			owner, ok := got[a]
			live := slices.ContainsFunc(list, func(n string) bool { return n != "" })
			if !live {
				if ok {
					t.Fatalf("seed %d: %s has no candidate but owner %q", seed, a, owner)
				}
				continue
			}
			if !ok || !slices.Contains(list, owner) {
				t.Fatalf("seed %d: %s owner %q not among candidates %q", seed, a, owner, list)
			}
			// The owner of a claimed IP is a claimant with the newest claim.
			var claimants []string
			var newest int64
			for n, claims := range in.Claims {
				if !slices.Contains(list, n) {
					continue
				}
				for _, c := range claims {
					if c.IP != a {
						continue
					}
					if len(claimants) == 0 || c.Epoch > newest {
						claimants, newest = claimants[:0], c.Epoch
					}
					if c.Epoch == newest && !slices.Contains(claimants, n) {
						claimants = append(claimants, n)
					}
				}
			}
			if len(claimants) > 0 && !slices.Contains(claimants, owner) {
				t.Fatalf("seed %d: claimed %s went to %q, not a newest claimant of %q", seed, a, owner, claimants)
			}
		}
		for a := range got {
			if _, ok := in.Candidates[a]; !ok {
				t.Fatalf("seed %d: owner for %s, not in the input", seed, a)
			}
		}
		if diff := gocmp.Diff(refElect(in), got); diff != "" {
			t.Fatalf("seed %d: Elect differs from the reference (-ref +got):\n%s", seed, diff)
		}
		for range 3 {
			if diff := gocmp.Diff(got, Elect(permuted(r, in))); diff != "" {
				t.Fatalf("seed %d: permuted input changes the result (-orig +permuted):\n%s", seed, diff)
			}
		}
	}
}

func TestElectDoesNotModifyInput(t *testing.T) {
	in := randomInput(rand.New(rand.NewPCG(7, 7)))
	before := Input{Candidates: make(map[netip.Addr][]string), Claims: make(map[string][]Claim)}
	for a, l := range in.Candidates {
		before.Candidates[a] = slices.Clone(l)
	}
	for n, l := range in.Claims {
		before.Claims[n] = slices.Clone(l)
	}
	Elect(in)
	if diff := gocmp.Diff(before, in, gocmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Elect modified its input (-before +after):\n%s", diff)
	}
}
