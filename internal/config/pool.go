package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// poolAddress is one parsed entry of a pool's spec.addresses, kept for the
// overlap check between pools.
type poolAddress struct {
	pool  string
	index int
	text  string
	r     model.Range
	o     *object
}

// pools validates the pools, fills cfg.Pools and cfg.PoolOrder with the
// valid ones, and reports overlaps between pools.
func (b *builder) pools(cfg *model.Config, entries []entry[v1beta1.IPAddressPool]) {
	var all []poolAddress
	for _, e := range entries {
		p, addrs, ok := b.pool(e)
		all = append(all, addrs...)
		if ok {
			cfg.Pools[p.Name] = p
			cfg.PoolOrder = append(cfg.PoolOrder, p.Name)
		}
	}
	slices.Sort(cfg.PoolOrder)
	b.poolOverlaps(all)
}

func (b *builder) pool(e entry[v1beta1.IPAddressPool]) (*model.Pool, []poolAddress, bool) {
	spec := &e.obj.Spec
	name := e.obj.Name
	ok := true
	if len(spec.Addresses) == 0 {
		b.add(e.object, "spec.addresses", "at least one address is required")
		ok = false
	}
	var addrs []poolAddress
	var ranges []model.Range
	for i, s := range spec.Addresses {
		r, err := parseAddresses(s)
		if err != nil {
			b.add(e.object, fmt.Sprintf("spec.addresses[%d]", i), "%v", err)
			ok = false
			continue
		}
		ranges = append(ranges, r)
		addrs = append(addrs, poolAddress{pool: name, index: i, text: s, r: r, o: e.object})
	}
	p := &model.Pool{
		Name:          name,
		Labels:        maps.Clone(e.obj.Labels),
		Ranges:        mergeRanges(ranges),
		AutoAssign:    spec.AutoAssign == nil || *spec.AutoAssign,
		AvoidBuggyIPs: spec.AvoidBuggyIPs,
		Source:        source(e.object),
	}
	for _, r := range p.Ranges {
		p.CIDRs = append(p.CIDRs, rangePrefixes(r)...)
	}
	if sa := spec.ServiceAllocation; sa != nil {
		alloc, allocOK := b.serviceAllocation(e.object, sa)
		p.Allocation = alloc
		ok = ok && allocOK
	}
	return p, addrs, ok
}

func (b *builder) serviceAllocation(o *object, sa *v1beta1.ServiceAllocation) (*model.ServiceAllocation, bool) {
	ok := true
	if sa.Priority < 0 {
		b.add(o, "spec.serviceAllocation.priority", "%d is negative", sa.Priority)
		ok = false
	}
	for i, ns := range sa.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			b.add(o, fmt.Sprintf("spec.serviceAllocation.namespaces[%d]", i), "%q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
			ok = false
		}
	}
	nsSels, nsOK := b.selectors(o, "spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors)
	svcSels, svcOK := b.selectors(o, "spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors)
	namespaces := slices.Clone(sa.Namespaces)
	slices.Sort(namespaces)
	return &model.ServiceAllocation{
		Priority:           int(sa.Priority),
		Namespaces:         slices.Compact(namespaces),
		NamespaceSelectors: nsSels,
		ServiceSelectors:   svcSels,
	}, ok && nsOK && svcOK
}

// poolOverlaps reports, for each pair of pools sharing addresses, one
// error on each pool naming the other.
func (b *builder) poolOverlaps(all []poolAddress) {
	slices.SortFunc(all, func(x, y poolAddress) int {
		return cmp.Or(x.r.First.Compare(y.r.First), x.r.Last.Compare(y.r.Last),
			strings.Compare(x.pool, y.pool), cmp.Compare(x.index, y.index))
	})
	type pair struct{ a, b string }
	reported := map[pair]bool{}
	var active []poolAddress // entries that may still overlap later ones
	for _, cur := range all {
		active = slices.DeleteFunc(active, func(a poolAddress) bool { return a.r.Last.Less(cur.r.First) })
		for _, a := range active {
			if a.pool == cur.pool {
				continue
			}
			k := pair{min(a.pool, cur.pool), max(a.pool, cur.pool)}
			if reported[k] {
				continue
			}
			reported[k] = true
			b.add(a.o, fmt.Sprintf("spec.addresses[%d]", a.index), "%q overlaps %q of pool %q", a.text, cur.text, cur.pool)
			b.add(cur.o, fmt.Sprintf("spec.addresses[%d]", cur.index), "%q overlaps %q of pool %q", cur.text, a.text, a.pool)
		}
		active = append(active, cur)
	}
}

// source tells the model where o came from.
func source(o *object) model.Source {
	if o.cm {
		return model.SourceConfigMap
	}
	return model.SourceCRD
}

// familyPrefixes returns the pool's prefixes of family f.
func familyPrefixes(p *model.Pool, f model.Family) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range p.CIDRs {
		if model.FamilyOf(c.Addr()) == f {
			out = append(out, c)
		}
	}
	return out
}
