package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// State is a BFD session state (RFC 5880 section 4.1, Sta field).
type State uint8

// Session states.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code: why the session last changed state (RFC 5880
// section 4.1, Diag field).
type Diag uint8

// Diagnostic codes.
const (
	DiagNone                  Diag = 0
	DiagTimeExpired           Diag = 1
	DiagEchoFailed            Diag = 2
	DiagNeighborDown          Diag = 3
	DiagForwardingReset       Diag = 4
	DiagPathDown              Diag = 5
	DiagConcatPathDown        Diag = 6
	DiagAdminDown             Diag = 7
	DiagReverseConcatPathDown Diag = 8
)

var diagNames = [...]string{
	DiagNone:                  "none",
	DiagTimeExpired:           "control detection time expired",
	DiagEchoFailed:            "echo function failed",
	DiagNeighborDown:          "neighbor signaled session down",
	DiagForwardingReset:       "forwarding plane reset",
	DiagPathDown:              "path down",
	DiagConcatPathDown:        "concatenated path down",
	DiagAdminDown:             "administratively down",
	DiagReverseConcatPathDown: "reverse concatenated path down",
}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("diag %d", uint8(d))
}

// Packet is a BFD Control packet (RFC 5880 section 4.1) without the
// authentication section. Intervals are carried in microseconds on the wire.
type Packet struct {
	Diag  Diag
	State State

	Poll, Final, ControlPlaneIndependent, AuthPresent, Demand, Multipoint bool

	DetectMult        uint8
	MyDiscriminator   uint32
	YourDiscriminator uint32

	DesiredMinTx, RequiredMinRx, RequiredMinEchoRx time.Duration
}

// PacketLen is the length of a Control packet without authentication.
const PacketLen = 24

const version = 1

// Flag bits of byte 1.
const (
	flagPoll       = 1 << 5
	flagFinal      = 1 << 4
	flagCPI        = 1 << 3
	flagAuth       = 1 << 2
	flagDemand     = 1 << 1
	flagMultipoint = 1 << 0
)

// Reasons Unmarshal rejects a packet (RFC 5880 section 6.8.6, the checks made
// before the session lookup, for a system without authentication). The
// returned errors wrap one of these; test with errors.Is.
var (
	ErrTooShort          = errors.New("bfd: packet shorter than 24 bytes")
	ErrVersion           = errors.New("bfd: unsupported version")
	ErrLength            = errors.New("bfd: bad length field")
	ErrAuth              = errors.New("bfd: authentication not supported")
	ErrDetectMult        = errors.New("bfd: detect mult is 0")
	ErrMultipoint        = errors.New("bfd: multipoint bit set")
	ErrMyDiscriminator   = errors.New("bfd: my discriminator is 0")
	ErrYourDiscriminator = errors.New("bfd: your discriminator is 0 outside Down and AdminDown")
)

// Append appends the 24-byte wire form of p to b and returns the extended
// slice: version 1, length 24. Intervals are truncated to whole microseconds
// and clamped to [0, 2^32-1] µs; Diag keeps its low 5 bits, State its low 2.
func (p Packet) Append(b []byte) []byte {
	var flags byte
	for _, f := range [...]struct {
		set bool
		bit byte
	}{
		{p.Poll, flagPoll}, {p.Final, flagFinal}, {p.ControlPlaneIndependent, flagCPI},
		{p.AuthPresent, flagAuth}, {p.Demand, flagDemand}, {p.Multipoint, flagMultipoint},
	} {
		if f.set {
			flags |= f.bit
		}
	}
	b = append(b, version<<5|byte(p.Diag)&0x1f, byte(p.State&3)<<6|flags, p.DetectMult, PacketLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDiscriminator)
	b = binary.BigEndian.AppendUint32(b, p.YourDiscriminator)
	b = binary.BigEndian.AppendUint32(b, micros(p.DesiredMinTx))
	b = binary.BigEndian.AppendUint32(b, micros(p.RequiredMinRx))
	return binary.BigEndian.AppendUint32(b, micros(p.RequiredMinEchoRx))
}

func micros(d time.Duration) uint32 {
	us := d / time.Microsecond
	switch {
	case us < 0:
		return 0
	case us > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(us)
}

// Unmarshal decodes a Control packet and rejects what RFC 5880 section 6.8.6
// discards before the session lookup. Bytes past the length field, and past
// byte 24 of a longer packet, are ignored.
func Unmarshal(b []byte) (Packet, error) {
	if len(b) < PacketLen {
		return Packet{}, fmt.Errorf("%w: %d bytes", ErrTooShort, len(b))
	}
	if v := b[0] >> 5; v != version {
		return Packet{}, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	// With the A bit clear the minimum length is 24; with it set it would be
	// 26, but such packets are rejected below anyway.
	if l := int(b[3]); l < PacketLen || l > len(b) {
		return Packet{}, fmt.Errorf("%w: %d in %d bytes", ErrLength, l, len(b))
	}
	flags := b[1]
	if flags&flagAuth != 0 {
		return Packet{}, ErrAuth
	}
	p := Packet{
		Diag:                    Diag(b[0] & 0x1f),
		State:                   State(b[1] >> 6),
		Poll:                    flags&flagPoll != 0,
		Final:                   flags&flagFinal != 0,
		ControlPlaneIndependent: flags&flagCPI != 0,
		Demand:                  flags&flagDemand != 0,
		Multipoint:              flags&flagMultipoint != 0,
		DetectMult:              b[2],
		MyDiscriminator:         binary.BigEndian.Uint32(b[4:]),
		YourDiscriminator:       binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:            time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Microsecond,
		RequiredMinRx:           time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Microsecond,
		RequiredMinEchoRx:       time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Microsecond,
	}
	switch {
	case p.DetectMult == 0:
		return Packet{}, ErrDetectMult
	case p.Multipoint:
		return Packet{}, ErrMultipoint
	case p.MyDiscriminator == 0:
		return Packet{}, ErrMyDiscriminator
	case p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown:
		return Packet{}, fmt.Errorf("%w: state %v", ErrYourDiscriminator, p.State)
	}
	return p, nil
}
