package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// coveredPools returns the sorted names of the valid pools an
// advertisement covers: the pools it names that exist, and the pools whose
// labels match one of its pool selectors; every pool when it has neither.
func (b *builder) coveredPools(cfg *model.Config, o *object, names []string, sels []metav1.LabelSelector) []string {
	if len(names) == 0 && len(sels) == 0 {
		return slices.Clone(cfg.PoolOrder)
	}
	selectors, _ := b.selectors(o, "spec.ipAddressPoolSelectors", sels)
	var out []string
	for _, name := range cfg.PoolOrder { // sorted, so out is too
		if slices.Contains(names, name) {
			out = append(out, name)
			continue
		}
		for _, s := range selectors {
			if s.Matches(cfg.Pools[name].Labels) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// l2Advertisements validates the L2Advertisements and fills cfg.L2Advs.
func (b *builder) l2Advertisements(cfg *model.Config, entries []entry[v1beta1.L2Advertisement]) {
	for _, e := range entries {
		spec := &e.obj.Spec
		ok := true
		var ifaces []string
		for i, name := range spec.Interfaces {
			if msg := checkInterfaceName(name); msg != "" {
				b.add(e.object, fmt.Sprintf("spec.interfaces[%d]", i), "%q %s", name, msg)
				ok = false
				continue
			}
			ifaces = append(ifaces, name)
		}
		slices.Sort(ifaces)
		nodes, nodesOK := b.selectors(e.object, "spec.nodeSelectors", spec.NodeSelectors)
		errsBefore := len(b.errs)
		pools := b.coveredPools(cfg, e.object, spec.IPAddressPools, spec.IPAddressPoolSelectors)
		if !ok || !nodesOK || len(b.errs) > errsBefore {
			continue
		}
		cfg.L2Advs = append(cfg.L2Advs, &model.L2Advertisement{
			Name:          e.obj.Name,
			Pools:         pools,
			NodeSelectors: nodes,
			Interfaces:    slices.Compact(ifaces),
			Source:        source(e.object),
		})
	}
}

// checkInterfaceName returns why name cannot be a Linux interface name
// (the kernel's dev_valid_name), or "".
func checkInterfaceName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 15:
		return "is longer than 15 characters"
	case name == "." || name == "..":
		return "is not an interface name"
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }):
		return "contains '/', ':' or whitespace"
	}
	return ""
}

// validBGPAdv is a valid BGPAdvertisement and where it came from.
type validBGPAdv struct {
	adv *model.BGPAdvertisement
	o   *object
}

// bgpAdvertisements validates the BGPAdvertisements, fills cfg.BGPAdvs and
// reports advertisements that would send one prefix to one peer with two
// sets of attributes.
func (b *builder) bgpAdvertisements(cfg *model.Config, entries []entry[v1beta1.BGPAdvertisement], peers peerSet, aliases map[string]alias) {
	var valid []validBGPAdv
	for _, e := range entries {
		if adv, ok := b.bgpAdvertisement(cfg, e, peers, aliases); ok {
			cfg.BGPAdvs = append(cfg.BGPAdvs, adv)
			valid = append(valid, validBGPAdv{adv, e.object})
		}
	}
	b.bgpConflicts(cfg, valid)
}

func (b *builder) bgpAdvertisement(cfg *model.Config, e entry[v1beta1.BGPAdvertisement], peers peerSet, aliases map[string]alias) (*model.BGPAdvertisement, bool) {
	spec := &e.obj.Spec
	o := e.object
	errsBefore := len(b.errs)
	adv := &model.BGPAdvertisement{
		Name:                e.obj.Name,
		AggregationLength:   DefaultAggregationLength,
		AggregationLengthV6: DefaultAggregationLengthV6,
		LocalPref:           spec.LocalPref,
		Source:              source(o),
	}
	aggOK := [2]bool{true, true}
	if l := spec.AggregationLength; l != nil {
		if *l < 0 || *l > 32 {
			b.add(o, "spec.aggregationLength", "%d is not between 0 and 32", *l)
			aggOK[0] = false
		} else {
			adv.AggregationLength = int(*l)
		}
	}
	if l := spec.AggregationLengthV6; l != nil {
		if *l < 0 || *l > 128 {
			b.add(o, "spec.aggregationLengthV6", "%d is not between 0 and 128", *l)
			aggOK[1] = false
		} else {
			adv.AggregationLengthV6 = int(*l)
		}
	}

	aliasOK := true
	for i, s := range spec.Communities {
		f := fmt.Sprintf("spec.communities[%d]", i)
		if strings.Contains(s, ":") {
			c, err := parseCommunity(s)
			if err != nil {
				b.add(o, f, "%v", err)
				continue
			}
			adv.Communities = append(adv.Communities, c)
			continue
		}
		a, found := aliases[s]
		switch {
		case !found:
			b.addDangling(o, f, "%q is neither a community value nor an alias defined in a Community object", s)
		case !a.valid:
			aliasOK = false // reported with the alias
		default:
			adv.Communities = append(adv.Communities, a.value)
		}
	}
	slices.SortFunc(adv.Communities, compareCommunities)
	adv.Communities = slices.Compact(adv.Communities)

	for i, name := range spec.Peers {
		f := fmt.Sprintf("spec.peers[%d]", i)
		if !peers.known[name] {
			// Like a pool that does not exist yet: objects may be applied
			// in any order, so a missing peer is simply not advertised to.
			continue
		}
		if p := peers.valid[name]; p != nil && !p.IBGP() && spec.LocalPref != 0 {
			asn := fmt.Sprintf("peerASN %d", p.ASN)
			if p.Dynamic == model.DynamicExternal {
				asn = "dynamicASN external"
			}
			b.add(o, "spec.localPref", "localPref is only for iBGP peers, but %s %q is eBGP (myASN %d, %s)", f, name, p.MyASN, asn)
		}
	}
	adv.Peers = slices.Clone(spec.Peers)
	slices.Sort(adv.Peers)
	adv.Peers = slices.Compact(adv.Peers)

	adv.NodeSelectors, _ = b.selectors(o, "spec.nodeSelectors", spec.NodeSelectors)
	adv.Pools = b.coveredPools(cfg, o, spec.IPAddressPools, spec.IPAddressPoolSelectors)

	for _, name := range adv.Pools {
		pool := cfg.Pools[name]
		for fi, fam := range []model.Family{model.IPv4, model.IPv6} {
			length, field := adv.AggregationLength, "spec.aggregationLength"
			if fam == model.IPv6 {
				length, field = adv.AggregationLengthV6, "spec.aggregationLengthV6"
			}
			if !aggOK[fi] {
				continue
			}
			for _, prefix := range familyPrefixes(pool, fam) {
				if length < prefix.Bits() {
					b.add(o, field, "%s %d is shorter than pool %q prefix %s", field[len("spec."):], length, name, prefix)
					break
				}
			}
		}
	}
	return adv, aliasOK && len(b.errs) == errsBefore
}

// bgpConflicts reports pairs of advertisements that announce the same
// prefixes (same pool, family and aggregation length) to the same peers
// from possibly the same nodes (unless their node selectors contradict
// each other, a node may match both), with different localPref or
// communities.
// The error is on the later advertisement by name, once per pair and pool.
func (b *builder) bgpConflicts(cfg *model.Config, advs []validBGPAdv) {
	for _, poolName := range cfg.PoolOrder {
		pool := cfg.Pools[poolName]
		var covering []validBGPAdv // sorted by name, as advs is
		for _, a := range advs {
			if slices.Contains(a.adv.Pools, poolName) {
				covering = append(covering, a)
			}
		}
		for j, second := range covering {
			for _, first := range covering[:j] {
				b.bgpConflict(pool, first, second)
			}
		}
	}
}

func (b *builder) bgpConflict(pool *model.Pool, first, second validBGPAdv) {
	x, y := first.adv, second.adv
	if !peersOverlap(x.Peers, y.Peers) {
		return
	}
	if !mayOverlap(x.NodeSelectors, y.NodeSelectors) {
		return
	}
	for _, fam := range []model.Family{model.IPv4, model.IPv6} {
		if !pool.HasFamily(fam) {
			continue
		}
		lx, ly := x.AggregationLength, y.AggregationLength
		if fam == model.IPv6 {
			lx, ly = x.AggregationLengthV6, y.AggregationLengthV6
		}
		if lx != ly {
			continue
		}
		what := fmt.Sprintf("conflicts with %s on pool %q: both announce %s /%d prefixes to the same peers, from nodes both may select", b.describe(first.o), pool.Name, fam, lx)
		switch {
		case x.LocalPref != y.LocalPref:
			b.add(second.o, "spec.localPref", "%s, but with localPref %d here and %d there", what, y.LocalPref, x.LocalPref)
		case !slices.Equal(x.Communities, y.Communities):
			b.add(second.o, "spec.communities", "%s, but with communities [%s] here and [%s] there", what, joinCommunities(y.Communities), joinCommunities(x.Communities))
		default:
			continue
		}
		return
	}
}

// peersOverlap reports whether two advertisements' peer lists share a
// peer; an empty list means every peer.
func peersOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, p := range a {
		if slices.Contains(b, p) {
			return true
		}
	}
	return false
}

func joinCommunities(cs []model.Community) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, " ")
}
