package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/herald-lb/herald/internal/model"
)

// class is a distinct (peer, attributes) pair: every route of a class
// goes to one peer with the same next hop, communities and local
// preference. Each class in use has a tag (see the package doc).
type class struct {
	peer      netip.Addr
	nextHop   netip.Addr // invalid: the session's local address
	std       string     // standard communities, "65000:100,65000:200"
	large     string     // large communities, "1:2:3,4:5:6"
	localPref uint32
}

func classOf(peer netip.Addr, r Route) class {
	c := class{peer: peer, nextHop: r.NextHop.Unmap(), localPref: r.LocalPref}
	var std, large []string
	for _, cm := range r.Communities {
		if cm.Large {
			large = append(large, communityString(cm))
		} else {
			std = append(std, communityString(cm))
		}
	}
	slices.Sort(std)
	slices.Sort(large)
	c.std = strings.Join(slices.Compact(std), ",")
	c.large = strings.Join(slices.Compact(large), ",")
	return c
}

// maxTag bounds the tags: they are the standard communities 0:1 to
// 0:65535 (RFC 1997 reserves 0x00000000-0x0000FFFF, so no real community
// collides, and the export policy strips them anyway).
const maxTag = 0xffff

// tagTable assigns tags to classes, keeping a class's tag for as long as
// it is in the table.
type tagTable struct {
	byClass map[class]uint32
}

// assign gives every class in cs a tag, reusing the tags classes already
// have and the lowest free ones for new classes.
func (t *tagTable) assign(cs map[class]bool) error {
	if t.byClass == nil {
		t.byClass = map[class]uint32{}
	}
	used := map[uint32]bool{}
	for _, tag := range t.byClass {
		used[tag] = true
	}
	var fresh []class
	for c := range cs {
		if _, ok := t.byClass[c]; !ok {
			fresh = append(fresh, c)
		}
	}
	slices.SortFunc(fresh, compareClass) // deterministic numbering
	next := uint32(1)
	for _, c := range fresh {
		for used[next] {
			next++
		}
		if next > maxTag {
			return fmt.Errorf("more than %d distinct (peer, attributes) combinations", maxTag)
		}
		t.byClass[c] = next
		used[next] = true
	}
	return nil
}

// keep drops every class not in cs.
func (t *tagTable) keep(cs map[class]bool) {
	for c := range t.byClass {
		if !cs[c] {
			delete(t.byClass, c)
		}
	}
}

func compareClass(a, b class) int {
	if c := a.peer.Compare(b.peer); c != 0 {
		return c
	}
	if c := a.nextHop.Compare(b.nextHop); c != 0 {
		return c
	}
	if c := strings.Compare(a.std, b.std); c != 0 {
		return c
	}
	if c := strings.Compare(a.large, b.large); c != 0 {
		return c
	}
	return int(a.localPref) - int(b.localPref)
}

// The global policies: import accepts only the speaker's own paths (it
// applies to them too), export is one statement per class.
const (
	importPolicy = "herald-import"
	exportPolicy = "herald-export"
)

func neighborSetName(a netip.Addr) string { return "herald-peer-" + a.String() }
func tagSetName(tag uint32) string        { return "herald-tag-" + strconv.FormatUint(uint64(tag), 10) }
func tagCommunity(tag uint32) string      { return "0:" + strconv.FormatUint(uint64(tag), 10) }

// policyRequest builds the whole policy for the classes in t: one
// neighbor set per peer, one community set per tag, and one statement per
// class in the export policy, in tag order. The request is a pure
// function of t, so equal requests mean nothing to do.
func (t *tagTable) policyRequest() *api.SetPoliciesRequest {
	type entry struct {
		c   class
		tag uint32
	}
	entries := make([]entry, 0, len(t.byClass))
	peers := map[netip.Addr]bool{}
	for c, tag := range t.byClass {
		entries = append(entries, entry{c, tag})
		peers[c.peer] = true
	}
	slices.SortFunc(entries, func(a, b entry) int { return int(a.tag) - int(b.tag) })

	req := &api.SetPoliciesRequest{}
	addrs := make([]netip.Addr, 0, len(peers))
	for a := range peers {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR, Name: neighborSetName(a), List: []string{netip.PrefixFrom(a, a.BitLen()).String()},
		})
	}
	pol := &api.Policy{Name: exportPolicy}
	for _, e := range entries {
		req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_COMMUNITY, Name: tagSetName(e.tag), List: []string{tagCommunity(e.tag)},
		})
		actions := &api.Actions{
			RouteAction: api.RouteAction_ACCEPT,
			// REPLACE removes the tags; with no communities it removes
			// the attribute.
			Community: &api.CommunityAction{Type: api.CommunityAction_REPLACE, Communities: splitList(e.c.std)},
			Nexthop:   &api.NexthopAction{Self: true},
		}
		if e.c.nextHop.IsValid() {
			actions.Nexthop = &api.NexthopAction{Address: e.c.nextHop.String()}
		}
		if e.c.large != "" {
			actions.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_REPLACE, Communities: splitList(e.c.large)}
		}
		if e.c.localPref != 0 {
			actions.LocalPref = &api.LocalPrefAction{Value: e.c.localPref}
		}
		pol.Statements = append(pol.Statements, &api.Statement{
			Name: "herald-class-" + strconv.FormatUint(uint64(e.tag), 10),
			Conditions: &api.Conditions{
				NeighborSet:  &api.MatchSet{Type: api.MatchSet_ANY, Name: neighborSetName(e.c.peer)},
				CommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: tagSetName(e.tag)},
			},
			Actions: actions,
		})
	}
	req.Policies = []*api.Policy{{
		Name: importPolicy,
		Statements: []*api.Statement{{
			Name:       "herald-local",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		}},
	}, pol}
	return req
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// communityString formats a community as GoBGP parses it.
func communityString(c model.Community) string {
	if c.Large {
		return fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2)
	}
	return fmt.Sprintf("%d:%d", c.Value>>16, c.Value&0xffff)
}
