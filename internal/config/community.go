package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// alias is a community alias from a Community object.
type alias struct {
	value model.Community
	valid bool // false when its value is invalid (already reported)
	o     *object
	index int
}

// communities validates the Community objects and returns every alias by
// name, valid or not, so that uses of an invalid alias are not reported a
// second time. CRD objects come first: when the ConfigMap defines an alias
// a Community object also defines, the error is on the Community object.
func (b *builder) communities(entries []entry[v1beta1.Community]) map[string]alias {
	ordered := slices.Clone(entries)
	slices.SortStableFunc(ordered, func(x, y entry[v1beta1.Community]) int {
		if x.cm == y.cm {
			return 0
		}
		if x.cm {
			return 1
		}
		return -1
	})
	aliases := map[string]alias{}
	for _, e := range ordered {
		for i, a := range e.obj.Spec.Communities {
			f := fmt.Sprintf("spec.communities[%d]", i)
			switch {
			case a.Name == "":
				b.add(e.object, f+".name", "required")
				continue
			case strings.ContainsAny(a.Name, ": \t\r\n"):
				b.add(e.object, f+".name", "%q: alias names may not contain ':' or whitespace", a.Name)
				continue
			}
			c, err := parseCommunity(a.Value)
			if err != nil {
				b.add(e.object, f+".value", "%v", err)
			}
			if prev, dup := aliases[a.Name]; dup {
				switch {
				case e.cm && !prev.o.cm:
					b.add(prev.o, fmt.Sprintf("spec.communities[%d].name", prev.index), "alias %q is defined both here and in ConfigMap %s/%s", a.Name, b.cm.Namespace, b.cm.Name)
				case prev.o == e.object:
					b.add(e.object, f+".name", "alias %q is already defined at spec.communities[%d]", a.Name, prev.index)
				default:
					b.add(e.object, f+".name", "alias %q is already defined in %s", a.Name, b.describe(prev.o))
				}
				continue
			}
			aliases[a.Name] = alias{value: c, valid: err == nil, o: e.object, index: i}
		}
	}
	return aliases
}

// parseCommunity parses a community value: "65000:100" (two 16-bit
// numbers) or "large:1:2:3" (three 32-bit numbers, "large" in any case).
func parseCommunity(s string) (model.Community, error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 2:
		asn, err1 := strconv.ParseUint(parts[0], 10, 16)
		val, err2 := strconv.ParseUint(parts[1], 10, 16)
		if err1 == nil && err2 == nil {
			return model.Community{Value: uint32(asn)<<16 | uint32(val)}, nil
		}
		return model.Community{}, fmt.Errorf("%q is not a community: both parts must be numbers from 0 to 65535", s)
	case len(parts) == 4 && strings.EqualFold(parts[0], "large"):
		var n [3]uint32
		for i, p := range parts[1:] {
			v, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				return model.Community{}, fmt.Errorf("%q is not a large community: all three parts must be numbers from 0 to 4294967295", s)
			}
			n[i] = uint32(v)
		}
		return model.Community{Large: true, Global: n[0], Local1: n[1], Local2: n[2]}, nil
	}
	return model.Community{}, fmt.Errorf("%q is not a community (\"65000:100\" or \"large:1:2:3\")", s)
}

// compareCommunities orders standard communities before large ones, each
// by value.
func compareCommunities(a, b model.Community) int {
	if a.Large != b.Large {
		if a.Large {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.Value, b.Value), cmp.Compare(a.Global, b.Global),
		cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
}
