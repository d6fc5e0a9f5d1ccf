package allocator

import (
	"hash/maphash"

	"github.com/herald-lb/herald/internal/model"
)

// service is what the allocator keeps per Service, laid out to fit 128
// bytes (there may be hundreds of thousands), with what a sharing check
// reads in the first 64.
//
// The Services holding one address form an intrusive list through next
// (one link per family, as a Service holds at most one address per
// family), so an address costs one map entry whatever its holders. The
// pool is not stored: it is the pool of the Service's addresses, found in
// the address index.
type service struct {
	// First cache line: what sharing checks and releases read.
	next  [nfam]*service
	ports portSet // empty without sharingKey
	v6    u128    // the IPv6 address, when flags has hasV6
	v4    uint32  // the IPv4 address, when flags has hasV4
	flags uint8
	// Second cache line.
	key        model.ServiceKey
	sharingKey string
	selector   string // compared only when Local
}

const (
	hasV4      uint8 = 1 << iota // holds an IPv4 address
	hasV6                        // holds an IPv6 address
	v6First                      // IPv6 is the primary family
	isLocal                      // externalTrafficPolicy: Local
	inCollided                   // stored in serviceTable.collided
)

func (s *service) has(f fam) bool { return s.flags&(hasV4<<f) != 0 }

func (s *service) addr(f fam) u128 {
	if f == v4 {
		return u128{lo: uint64(s.v4)}
	}
	return s.v6
}

func (s *service) setAddr(f fam, x u128) {
	if f == v4 {
		s.v4 = uint32(x.lo)
	} else {
		s.v6 = x
	}
	s.flags |= hasV4 << f
}

func (s *service) clearAddr(f fam) { s.flags &^= hasV4 << f }

func (s *service) local() bool { return s.flags&isLocal != 0 }

func (s *service) setFlag(flag uint8, on bool) {
	if on {
		s.flags |= flag
	} else {
		s.flags &^= flag
	}
}

// primary returns the family of the Service's primary address.
func (s *service) primary() fam {
	if s.flags&v6First != 0 && s.has(v6) || !s.has(v4) {
		return v6
	}
	return v4
}

// serviceTable maps ServiceKeys to services. It is keyed by a 64-bit hash
// of the key rather than by the key itself: an entry costs 16 bytes of
// map slot instead of 40, which is most of a Service's footprint after
// the service itself. The rare Service whose hash slot is taken by
// another key lives in collided.
type serviceTable struct {
	seed     maphash.Seed
	hash     func(maphash.Seed, model.ServiceKey) uint64 // replaced by tests to force collisions
	byHash   map[uint64]*service
	collided map[model.ServiceKey]*service
}

func newServiceTable() serviceTable {
	return serviceTable{
		seed:     maphash.MakeSeed(),
		hash:     maphash.Comparable[model.ServiceKey],
		byHash:   map[uint64]*service{},
		collided: map[model.ServiceKey]*service{},
	}
}

func (t *serviceTable) len() int { return len(t.byHash) + len(t.collided) }

// place says where a Service absent from the table goes: valid until
// the table changes.
type place struct {
	h     uint64
	taken bool // byHash[h] holds another key
}

// find returns the service of k, or nil and where to add it.
func (t *serviceTable) find(k model.ServiceKey) (*service, place) {
	h := t.hash(t.seed, k)
	s := t.byHash[h]
	if s != nil && s.key == k {
		return s, place{h: h, taken: true}
	}
	if len(t.collided) > 0 {
		if c := t.collided[k]; c != nil {
			return c, place{h: h, taken: true}
		}
	}
	return nil, place{h: h, taken: s != nil}
}

func (t *serviceTable) get(k model.ServiceKey) *service {
	s, _ := t.find(k)
	return s
}

// add stores s, whose key is not in the table, at pl from find.
func (t *serviceTable) add(s *service, pl place) {
	if !pl.taken {
		t.byHash[pl.h] = s
		return
	}
	t.collided[s.key] = s
	s.flags |= inCollided
}

func (t *serviceTable) remove(s *service) {
	if s.flags&inCollided != 0 {
		delete(t.collided, s.key)
		s.flags &^= inCollided
		return
	}
	delete(t.byHash, t.hash(t.seed, s.key))
}

// all calls fn for every service; fn must not change the table.
func (t *serviceTable) all(fn func(*service)) {
	for _, s := range t.byHash {
		fn(s)
	}
	for _, s := range t.collided {
		fn(s)
	}
}
