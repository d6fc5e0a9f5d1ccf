package allocator

import (
	"slices"

	"github.com/herald-lb/herald/internal/model"
)

// portSet is a Service's sorted, deduplicated ports as the allocator
// keeps them. Most Services have one or two: they are packed into small
// (24 bits each, protocol<<16 | port, their count in the top byte), so
// checking a holder's ports touches no other memory and costs no
// allocation. Longer lists live in large.
type portSet struct {
	small uint64
	large *[]model.Port
}

const portsInline = 2

func portCode(p model.Port) uint64 { return uint64(p.Protocol)<<16 | uint64(p.Port) }

// makePortSet keeps ps, sorted and deduplicated; it copies what it keeps.
func makePortSet(ps []model.Port) portSet {
	if len(ps) > portsInline {
		l := slices.Clone(ps)
		return portSet{large: &l}
	}
	s := portSet{small: uint64(len(ps)) << 56}
	for i, p := range ps {
		s.small |= portCode(p) << (24 * i)
	}
	return s
}

func (s portSet) len() int {
	if s.large != nil {
		return len(*s.large)
	}
	return int(s.small >> 56)
}

func (s portSet) at(i int) model.Port {
	if s.large != nil {
		return (*s.large)[i]
	}
	c := s.small >> (24 * i)
	return model.Port{Protocol: model.Protocol(c >> 16), Port: uint16(c)}
}

// equal reports whether s holds exactly ps (sorted, deduplicated).
func (s portSet) equal(ps []model.Port) bool {
	if s.len() != len(ps) {
		return false
	}
	for i, p := range ps {
		if s.at(i) != p {
			return false
		}
	}
	return true
}

// common returns a port both in s and in ps (sorted).
func (s portSet) common(ps []model.Port) (model.Port, bool) {
	i, j, n := 0, 0, s.len()
	for i < n && j < len(ps) {
		switch c := comparePorts(s.at(i), ps[j]); {
		case c == 0:
			return ps[j], true
		case c < 0:
			i++
		default:
			j++
		}
	}
	return model.Port{}, false
}
