package config

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/herald-lb/herald/internal/model"
)

// parseAddresses parses one entry of IPAddressPool.spec.addresses: a CIDR
// ("10.0.0.0/24", host bits masked) or an inclusive range
// ("10.0.0.1-10.0.0.9", spaces around the parts allowed). The range
// returned has First <= Last, both of one family, neither IPv4-mapped nor
// zoned.
func parseAddresses(s string) (model.Range, error) {
	neither := fmt.Errorf("%q is neither a CIDR nor a first-last range", s)
	if strings.Contains(s, "-") {
		firstS, lastS, _ := strings.Cut(s, "-")
		first, err1 := netip.ParseAddr(strings.TrimSpace(firstS))
		last, err2 := netip.ParseAddr(strings.TrimSpace(lastS))
		if err1 != nil || err2 != nil {
			return model.Range{}, neither
		}
		for _, a := range []netip.Addr{first, last} {
			if err := checkAddr(a); err != nil {
				return model.Range{}, fmt.Errorf("range %q: %w", s, err)
			}
		}
		if first.Is4() != last.Is4() {
			return model.Range{}, fmt.Errorf("range %q mixes IPv4 and IPv6", s)
		}
		if last.Less(first) {
			return model.Range{}, fmt.Errorf("range %q: %s is after %s", s, first, last)
		}
		return checkMapped(s, model.Range{First: first, Last: last})
	}
	t := strings.TrimSpace(s)
	if !strings.Contains(t, "/") {
		if a, err := netip.ParseAddr(t); err == nil && checkAddr(a) == nil {
			return model.Range{}, fmt.Errorf("%q is neither a CIDR nor a first-last range (for one address write %s)", s, netip.PrefixFrom(a, a.BitLen()))
		}
		return model.Range{}, neither
	}
	p, err := netip.ParsePrefix(t)
	if err != nil {
		return model.Range{}, neither
	}
	if err := checkAddr(p.Addr()); err != nil {
		return model.Range{}, fmt.Errorf("CIDR %q: %w", s, err)
	}
	p = p.Masked()
	return checkMapped(s, model.Range{First: p.Addr(), Last: lastAddr(p)})
}

// The IPv4-mapped IPv6 addresses, ::ffff:0:0/96.
var mappedFirst, mappedLast = netip.MustParseAddr("::ffff:0.0.0.0"), netip.MustParseAddr("::ffff:255.255.255.255")

// checkMapped refuses an IPv6 range that holds IPv4-mapped addresses:
// they are IPv4 addresses to everything that handles them.
func checkMapped(s string, r model.Range) (model.Range, error) {
	if r.First.Is6() && !mappedLast.Less(r.First) && !r.Last.Less(mappedFirst) {
		return model.Range{}, fmt.Errorf("%q holds the IPv4-mapped addresses ::ffff:0:0/96, which are not IPv6 addresses to announce; leave them out", s)
	}
	return r, nil
}

// checkAddr rejects the spellings Herald does not accept for an address.
func checkAddr(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s has a zone; zones are not allowed", a)
	case a.Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address; write %s", a, a.Unmap())
	}
	return nil
}

// lastAddr returns the last address of p (p masked).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	hostBits := p.Addr().BitLen() - p.Bits()
	for i := 15; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// trailingZeros counts the trailing zero bits of a.
func trailingZeros(a netip.Addr) int {
	b := a.As16()
	n := 0
	for i := 15; i >= 16-a.BitLen()/8; i-- {
		if b[i] != 0 {
			return n + bits.TrailingZeros8(b[i])
		}
		n += 8
	}
	return n
}

// rangePrefixes returns the fewest prefixes that exactly cover r, in
// order.
func rangePrefixes(r model.Range) []netip.Prefix {
	var out []netip.Prefix
	first := r.First
	for {
		l := first.BitLen() - trailingZeros(first)
		p := netip.PrefixFrom(first, l)
		for r.Last.Less(lastAddr(p)) {
			l++
			p = netip.PrefixFrom(first, l)
		}
		out = append(out, p)
		last := lastAddr(p)
		if last == r.Last {
			return out
		}
		first = last.Next()
	}
}

// mergeRanges sorts ranges and merges the overlapping and adjacent ones.
func mergeRanges(rs []model.Range) []model.Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b model.Range) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		return a.Last.Compare(b.Last)
	})
	var out []model.Range
	for _, r := range rs {
		if n := len(out); n > 0 {
			cur := &out[n-1]
			next := cur.Last.Next()
			if r.First.Compare(cur.Last) <= 0 || (next.IsValid() && next == r.First) {
				if cur.Last.Less(r.Last) {
					cur.Last = r.Last
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
