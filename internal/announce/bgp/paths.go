package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// pathSpec is the GoBGP path of one prefix: its own next hop and the tags
// of the classes it belongs to. Equal specs are equal paths.
type pathSpec struct {
	// nextHop is the lowest next hop among the prefix's classes, or the
	// unspecified address of its family when all of them use the
	// session's address; the export policy sets each peer's anyway. A
	// specified next hop keeps GoBGP from rewriting an IPv4 route's next
	// hop to an IPv6 session's address before the policy runs.
	nextHop netip.Addr
	tags    string // sorted tag values, comma separated
}

// specOf builds the spec of a prefix from the classes it belongs to and
// their tags; it also returns the tags, sorted.
func specOf(prefix netip.Prefix, classes []class, tags map[class]uint32) (pathSpec, []uint32) {
	var nh netip.Addr
	var vals []uint32
	for _, c := range classes {
		vals = append(vals, tags[c])
		if c.nextHop.IsValid() && (!nh.IsValid() || c.nextHop.Less(nh)) {
			nh = c.nextHop
		}
	}
	if !nh.IsValid() {
		nh = netip.IPv4Unspecified()
		if prefix.Addr().Is6() {
			nh = netip.IPv6Unspecified()
		}
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	return pathSpec{nextHop: nh, tags: fmt.Sprint(vals)}, vals
}

// apiPath builds the GoBGP path for prefix (a withdrawal when withdraw).
func (ps pathSpec) apiPath(prefix netip.Prefix, tags []uint32, withdraw bool) (*api.Path, error) {
	var nlri bgppkt.AddrPrefixInterface
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if prefix.Addr().Is4() {
		nlri = bgppkt.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		attrs = append(attrs, bgppkt.NewPathAttributeNextHop(ps.nextHop.String()))
	} else {
		nlri = bgppkt.NewIPv6AddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		attrs = append(attrs, bgppkt.NewPathAttributeMpReachNLRI(ps.nextHop.String(), []bgppkt.AddrPrefixInterface{nlri}))
	}
	if len(tags) > 0 {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities(tags))
	}
	p, err := apiutil.NewPath(nlri, withdraw, attrs, time.Now())
	if err != nil {
		return nil, fmt.Errorf("build path %s: %w", prefix, err)
	}
	return p, nil
}
