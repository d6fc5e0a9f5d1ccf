package election

import "net/netip"

// FNV-1a 64-bit parameters.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// Score is the rendezvous score of node for ip: the higher, the more ip
// prefers node. It is part of the election contract (see the package
// documentation) and must never change, or speakers of different versions
// would elect different owners:
//
//	addrKey = FNV-1a-64 of ip.As16() (IPv4 in its IPv4-mapped form, zone dropped)
//	nodeKey = mix(FNV-1a-64 of the bytes of node)
//	Score   = mix(addrKey XOR nodeKey)
//
// where mix is the SplitMix64 finalizer. mix is a bijection, so for one
// address two names have equal scores only when their FNV-1a hashes
// collide.
func Score(ip netip.Addr, node string) uint64 {
	return combine(addrKey(ip), nodeKey(node))
}

func combine(addrKey, nodeKey uint64) uint64 { return mix(addrKey ^ nodeKey) }

func addrKey(ip netip.Addr) uint64 {
	b := ip.As16()
	h := fnvOffset
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func nodeKey(node string) uint64 {
	h := fnvOffset
	for i := 0; i < len(node); i++ {
		h ^= uint64(node[i])
		h *= fnvPrime
	}
	return mix(h)
}

// mix is the SplitMix64 finalizer (Steele, Lea, Flood 2014).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ByScore returns, for every IP of candidates with at least one candidate,
// the candidate with the highest Score(ip, node) (equal scores: the
// smaller name). It is the rule for speakers that share no claims
// (memberlist off): an IP moves only when its candidates change, and IPs
// spread evenly over their candidates only on average. Duplicates and
// empty names are ignored.
func ByScore(candidates map[netip.Addr][]string) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(candidates))
	keys := map[string]uint64{}
	for ip, cands := range candidates {
		ak := addrKey(ip.WithZone(""))
		best, bestScore := "", uint64(0)
		for _, n := range cands {
			if n == "" {
				continue
			}
			k, ok := keys[n]
			if !ok {
				k = nodeKey(n)
				keys[n] = k
			}
			sc := combine(ak, k)
			if best == "" || sc > bestScore || (sc == bestScore && n < best) {
				best, bestScore = n, sc
			}
		}
		if best != "" {
			out[ip] = best
		}
	}
	return out
}
