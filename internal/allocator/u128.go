package allocator

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"

	"github.com/herald-lb/herald/internal/model"
)

// fam indexes per-family state: v4 or v6.
type fam uint8

const (
	v4 fam = iota
	v6
	nfam
)

func famOf(f model.Family) fam {
	if f == model.IPv6 {
		return v6
	}
	return v4
}

func (f fam) model() model.Family {
	if f == v6 {
		return model.IPv6
	}
	return model.IPv4
}

func (f fam) String() string { return f.model().String() }

func (f fam) other() fam { return 1 - f }

// u128 is an address as a 128-bit unsigned integer. IPv4 addresses use
// the low 32 bits; the family is always carried next to it, never
// guessed from the value.
type u128 struct{ hi, lo uint64 }

// addrKey converts a to its family and integer form. IPv4-mapped IPv6
// addresses are treated as the IPv4 address they map (model.FamilyOf
// does the same), and zones are dropped. a must be valid.
func addrKey(a netip.Addr) (fam, u128) {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return v4, u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return v6, u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr converts x back to an address of family f.
func (x u128) addr(f fam) netip.Addr {
	if f == v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(x.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b)
}

func (x u128) cmp(y u128) int {
	switch {
	case x.hi < y.hi:
		return -1
	case x.hi > y.hi:
		return 1
	case x.lo < y.lo:
		return -1
	case x.lo > y.lo:
		return 1
	}
	return 0
}

func (x u128) less(y u128) bool { return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo) }

// inc returns x+1; ok is false when x is the largest value.
func (x u128) inc() (y u128, ok bool) {
	if x.lo == math.MaxUint64 {
		if x.hi == math.MaxUint64 {
			return u128{}, false
		}
		return u128{hi: x.hi + 1}, true
	}
	return u128{hi: x.hi, lo: x.lo + 1}, true
}

// dec returns x-1; ok is false when x is zero.
func (x u128) dec() (y u128, ok bool) {
	if x.lo == 0 {
		if x.hi == 0 {
			return u128{}, false
		}
		return u128{hi: x.hi - 1, lo: math.MaxUint64}, true
	}
	return u128{hi: x.hi, lo: x.lo - 1}, true
}

// sizeTo returns the number of values in [x, y] (x <= y), saturated at
// math.MaxUint64.
func (x u128) sizeTo(y u128) uint64 {
	hi, lo := y.hi-x.hi, y.lo-x.lo
	if y.lo < x.lo {
		hi--
	}
	if hi != 0 || lo == math.MaxUint64 {
		return math.MaxUint64
	}
	return lo + 1
}

// buggy reports whether x, an IPv4 address, ends in .0 or .255.
func (x u128) buggy() bool {
	b := x.lo & 0xff
	return b == 0 || b == 0xff
}

func (x u128) String() string {
	return "0x" + strconv.FormatUint(x.hi, 16) + "_" + strconv.FormatUint(x.lo, 16)
}

// satAdd adds saturating at math.MaxUint64.
func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}
