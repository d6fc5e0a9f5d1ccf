package memberlist

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/herald-lb/herald/internal/election"
)

// Wire format. Every message starts with the format version and a kind:
//
//	message = wireVersion(1 byte) kind(1 byte) body
//
//	kindFull   gossip  record                           a whole claim set
//	kindDelta  gossip  name epoch baseSeq seq claims addrs
//	                                                    added (or re-dated) claims, removed addresses
//	kindNotice gossip  name epoch seq                   "my claims are now at this version"
//	kindPull   TCP     name epoch seq                   "send me your record" (name: who asks;
//	                                                    epoch, seq: the newest version of yours it heard of)
//	kindReply  TCP     record                           the answer to kindPull
//	kindState  push/pull  name count record*            every known claim set (name: sender)
//	kindLeave  UDP     name epoch seq                   "I am leaving" (sent straight to every member
//	                                                    on a graceful shutdown, ahead of memberlist's
//	                                                    own leave; epoch, seq: the sender's version)
//
//	record  = name epoch seq claims
//	name    = uvarint length, bytes (at most maxNameLen)
//	epoch, seq, count = uvarint (epoch: the version's, see version)
//	claims  = addrs, then one varint per address, in the same order: its
//	          claim epoch (election.Claim.Epoch) minus the previous
//	          address's (0 before the first), zigzag-encoded, wrapping
//	addrs   = uvarint n4, n4 IPv4 entries, uvarint n6, n6 IPv6 entries;
//	          strictly ascending. IPv4: the first address as a uvarint of its
//	          32-bit value, each next one as the uvarint of (gap - 1).
//	          IPv6: one byte s (bytes shared with the previous address,
//	          0 for the first, at most 15), then the 16-s remaining bytes.
//
// A run of consecutive IPv4 addresses costs one byte each, of
// consecutive IPv6 addresses two; a claim epoch equal to the previous
// one (addresses taken over together) one more, the first epoch of a
// list six (Unix milliseconds, zigzagged, take 42 bits), epochs minutes
// to weeks apart three to five. A delta's added claims replace the
// claims of the same addresses: a claim whose epoch changed travels as an
// added claim. Decoders reject anything malformed (an unknown format
// version, 1 included, or kind; truncation; trailing bytes; unsorted
// addresses; counts larger than the bytes left) without allocating more
// than the input justifies.
const (
	wireVersion = 2

	kindFull   = 1
	kindDelta  = 2
	kindNotice = 3
	kindPull   = 4
	kindReply  = 5
	kindState  = 6
	kindLeave  = 7

	maxNameLen = 1024

	// minClaimLen is the fewest bytes a claim takes (an IPv4 address in
	// a run and an epoch equal to the previous one): a list of n claims
	// takes at least minClaimLen x n bytes.
	minClaimLen = 2
)

var errMalformed = errors.New("malformed claims message")

// leavingMeta is the memberlist node meta of a member that leaves the
// cluster gracefully (see leftGracefully); the meta is empty otherwise.
// Part of the contract between speakers, like the wire format.
var leavingMeta = []byte("herald/leaving")

// noLinkMetaPrefix starts the node meta of a member that has no working
// link on some of the interface sets it answers on (SetNoLink): the
// prefix, then for each set, in order, a newline and the set (opaque
// here: the speaker's own naming). Part of the contract between
// speakers, like the wire format.
var noLinkMetaPrefix = []byte("herald/nolink")

// encodeNoLinkMeta returns the node meta for sets (canonical, none with a
// newline), with as many of them as fit in limit bytes, and how many fit;
// nil for no sets.
func encodeNoLinkMeta(sets []string, limit int) ([]byte, int) {
	if len(sets) == 0 {
		return nil, 0
	}
	b := slices.Clone(noLinkMetaPrefix)
	n := 0
	for _, s := range sets {
		if len(b)+1+len(s) > limit {
			break
		}
		b = append(append(b, '\n'), s...)
		n++
	}
	if n == 0 {
		return nil, 0
	}
	return b, n
}

// decodeNoLinkMeta returns the sets of a node meta written by
// encodeNoLinkMeta; nil for any other meta.
func decodeNoLinkMeta(meta []byte) []string {
	rest, ok := bytes.CutPrefix(meta, noLinkMetaPrefix)
	if !ok || len(rest) == 0 || rest[0] != '\n' {
		return nil
	}
	return strings.Split(string(rest[1:]), "\n")
}

// version orders the claim sets of one node: epoch first (the start time
// of the speaker process, in Unix nanoseconds), then seq (bumped by each
// change within the process).
type version struct {
	epoch, seq uint64
}

func (v version) less(o version) bool {
	return v.epoch < o.epoch || v.epoch == o.epoch && v.seq < o.seq
}

// wireRecord is one node's claim set at a version.
type wireRecord struct {
	name   string
	v      version
	claims []election.Claim // canonical: see canonical
}

// wireDelta turns the claim set of name at v.epoch/base into the one at
// v: the claims of the addresses in removed go, those in added are set
// (replacing any claim of the same address).
type wireDelta struct {
	name    string
	base    uint64
	v       version
	added   []election.Claim // canonical
	removed []netip.Addr     // sorted, unique
}

// message is a decoded message; which fields are set depends on kind.
type message struct {
	kind    byte
	rec     wireRecord   // kindFull, kindReply
	delta   wireDelta    // kindDelta
	name    string       // kindNotice, kindPull, kindLeave, kindState (sender)
	v       version      // kindNotice, kindPull, kindLeave
	records []wireRecord // kindState
}

// canonical returns claims as the wire and the table keep them:
// IPv4-mapped addresses unmapped, zones dropped, invalid addresses
// removed, sorted by address, one claim per address (the newest, when
// an address is claimed more than once). It does not modify claims.
func canonical(claims []election.Claim) []election.Claim {
	out := make([]election.Claim, 0, len(claims))
	for _, c := range claims {
		if !c.IP.IsValid() {
			continue
		}
		out = append(out, election.Claim{IP: c.IP.Unmap().WithZone(""), Epoch: c.Epoch})
	}
	slices.SortFunc(out, func(a, b election.Claim) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(b.Epoch, a.Epoch))
	})
	out = slices.CompactFunc(out, func(a, b election.Claim) bool { return a.IP == b.IP })
	return slices.Clip(out)
}

func header(kind byte, sizeHint int) []byte {
	b := make([]byte, 0, 2+sizeHint)
	return append(b, wireVersion, kind)
}

func appendName(b []byte, name string) []byte {
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...)
}

func appendRecord(b []byte, r wireRecord) []byte {
	b = appendName(b, r.name)
	b = binary.AppendUvarint(b, r.v.epoch)
	b = binary.AppendUvarint(b, r.v.seq)
	return appendClaims(b, r.claims)
}

// appendClaims encodes canonical claims: their addresses, then their
// epochs.
func appendClaims(b []byte, claims []election.Claim) []byte {
	b = appendAddrs(b, len(claims), func(i int) netip.Addr { return claims[i].IP })
	var prev int64
	for _, c := range claims {
		b = binary.AppendVarint(b, c.Epoch-prev) // wraps; so does the decoder
		prev = c.Epoch
	}
	return b
}

// appendAddrs encodes n sorted, unique, unmapped addresses, the i-th
// given by at(i).
func appendAddrs(b []byte, n int, at func(i int) netip.Addr) []byte {
	n4 := 0
	for n4 < n && at(n4).Is4() {
		n4++
	}
	b = binary.AppendUvarint(b, uint64(n4))
	var prev uint32
	for i := range n4 {
		v := binary.BigEndian.Uint32(at(i).AsSlice())
		if i == 0 {
			b = binary.AppendUvarint(b, uint64(v))
		} else {
			b = binary.AppendUvarint(b, uint64(v-prev-1))
		}
		prev = v
	}
	b = binary.AppendUvarint(b, uint64(n-n4))
	var prev6 [16]byte
	for i := n4; i < n; i++ {
		cur := at(i).As16()
		s := 0
		if i > n4 {
			for s < 15 && cur[s] == prev6[s] {
				s++
			}
		}
		b = append(b, byte(s))
		b = append(b, cur[s:]...)
		prev6 = cur
	}
	return b
}

// recordSize estimates the encoded size of r, for preallocation.
func recordSize(r wireRecord) int { return len(r.name) + 24 + minClaimLen*len(r.claims) + 8 }

func encodeFull(r wireRecord) []byte {
	return appendRecord(header(kindFull, recordSize(r)), r)
}

func encodeReply(r wireRecord) []byte {
	return appendRecord(header(kindReply, recordSize(r)), r)
}

func encodeDelta(d wireDelta) []byte {
	b := header(kindDelta, len(d.name)+40+minClaimLen*len(d.added)+len(d.removed))
	b = appendName(b, d.name)
	b = binary.AppendUvarint(b, d.v.epoch)
	b = binary.AppendUvarint(b, d.base)
	b = binary.AppendUvarint(b, d.v.seq)
	b = appendClaims(b, d.added)
	return appendAddrs(b, len(d.removed), func(i int) netip.Addr { return d.removed[i] })
}

func encodeNotice(name string, v version) []byte {
	b := appendName(header(kindNotice, len(name)+20), name)
	b = binary.AppendUvarint(b, v.epoch)
	return binary.AppendUvarint(b, v.seq)
}

func encodeLeave(name string, v version) []byte {
	b := appendName(header(kindLeave, len(name)+20), name)
	b = binary.AppendUvarint(b, v.epoch)
	return binary.AppendUvarint(b, v.seq)
}

func encodePull(from string, heard version) []byte {
	b := appendName(header(kindPull, len(from)+20), from)
	b = binary.AppendUvarint(b, heard.epoch)
	return binary.AppendUvarint(b, heard.seq)
}

func encodeState(sender string, recs []wireRecord) []byte {
	size := len(sender) + 8
	for _, r := range recs {
		size += recordSize(r)
	}
	b := appendName(header(kindState, size), sender)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = appendRecord(b, r)
	}
	return b
}

// decoder reads a message; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.fail()
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// count reads a count of items each taking at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) name() string {
	n := d.uvarint()
	if n > maxNameLen {
		d.fail()
		return ""
	}
	return string(d.bytes(int(n)))
}

// addrs reads an address list. tail is the number of bytes that follow
// per address (its epoch in a claim list), so that the counts are
// checked against the bytes left.
func (d *decoder) addrs(tail int) []netip.Addr {
	n4 := d.count(1 + tail)
	if d.err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, n4)
	var prev uint64
	for i := range n4 {
		v := d.uvarint()
		if i > 0 {
			v += prev + 1
			if v <= prev { // wrapped
				d.fail()
			}
		}
		if v > 0xffffffff {
			d.fail()
		}
		if d.err != nil {
			return nil
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(v))
		out = append(out, netip.AddrFrom4(a))
		prev = v
	}
	n6 := d.count(2 + tail)
	out = slices.Grow(out, n6)
	var prev6 [16]byte
	for i := range n6 {
		s := d.bytes(1)
		if d.err != nil {
			return nil
		}
		shared := int(s[0])
		if shared > 15 || i == 0 && shared != 0 {
			d.fail()
			return nil
		}
		rest := d.bytes(16 - shared)
		if d.err != nil {
			return nil
		}
		cur := prev6
		copy(cur[shared:], rest)
		if i > 0 && bytes.Compare(cur[:], prev6[:]) <= 0 {
			d.fail()
			return nil
		}
		a := netip.AddrFrom16(cur)
		if a.Is4In6() {
			d.fail() // IPv4 travels in the IPv4 list
			return nil
		}
		out = append(out, a)
		prev6 = cur
	}
	return out
}

// claims reads a claim list: addresses, then epochs.
func (d *decoder) claims() []election.Claim {
	ips := d.addrs(1)
	if d.err != nil {
		return nil
	}
	out := make([]election.Claim, len(ips))
	var prev int64
	for i, a := range ips {
		prev += d.varint() // wraps, as the encoder did
		out[i] = election.Claim{IP: a, Epoch: prev}
	}
	if d.err != nil {
		return nil
	}
	return out
}

func (d *decoder) record() wireRecord {
	var r wireRecord
	r.name = d.name()
	r.v.epoch = d.uvarint()
	r.v.seq = d.uvarint()
	r.claims = d.claims()
	return r
}

// decode parses one message.
func decode(b []byte) (message, error) {
	if len(b) < 2 {
		return message{}, errMalformed
	}
	if b[0] != wireVersion {
		return message{}, fmt.Errorf("%w: format version %d", errMalformed, b[0])
	}
	m := message{kind: b[1]}
	d := &decoder{b: b[2:]}
	switch m.kind {
	case kindFull, kindReply:
		m.rec = d.record()
	case kindDelta:
		m.delta.name = d.name()
		m.delta.v.epoch = d.uvarint()
		m.delta.base = d.uvarint()
		m.delta.v.seq = d.uvarint()
		m.delta.added = d.claims()
		m.delta.removed = d.addrs(0)
		if d.err == nil && m.delta.base >= m.delta.v.seq {
			d.fail()
		}
	case kindNotice, kindPull, kindLeave:
		m.name = d.name()
		m.v.epoch = d.uvarint()
		m.v.seq = d.uvarint()
	case kindState:
		m.name = d.name()
		n := d.count(5) // name length, epoch, seq, n4, n6
		for range n {
			r := d.record()
			if d.err != nil {
				break
			}
			m.records = append(m.records, r)
		}
	default:
		return message{}, fmt.Errorf("%w: kind %d", errMalformed, m.kind)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return message{}, d.err
	}
	return m, nil
}
