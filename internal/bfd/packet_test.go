package bfd

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// knownPacket and knownBytes are the same packet; the bytes are written by
// hand from the layout in RFC 5880 section 4.1.
var knownPacket = Packet{
	Diag:                    DiagPathDown,
	State:                   StateUp,
	Poll:                    true,
	ControlPlaneIndependent: true,
	DetectMult:              3,
	MyDiscriminator:         0x01020304,
	YourDiscriminator:       0xa0b0c0d0,
	DesiredMinTx:            300 * time.Millisecond, // 300000 µs
	RequiredMinRx:           time.Second,            // 1000000 µs
	RequiredMinEchoRx:       50 * time.Millisecond,  // 50000 µs
}

var knownBytes = []byte{
	0x25,                   // version 1 << 5 | diag 5
	0xe8,                   // state 3 << 6 | P (0x20) | C (0x08)
	0x03,                   // detect mult
	0x18,                   // length 24
	0x01, 0x02, 0x03, 0x04, // my discriminator
	0xa0, 0xb0, 0xc0, 0xd0, // your discriminator
	0x00, 0x04, 0x93, 0xe0, // desired min TX 300000
	0x00, 0x0f, 0x42, 0x40, // required min RX 1000000
	0x00, 0x00, 0xc3, 0x50, // required min echo RX 50000
}

func TestPacketKnownBytes(t *testing.T) {
	t.Run("append", func(t *testing.T) {
		if diff := cmp.Diff(knownBytes, knownPacket.Append(nil)); diff != "" {
			t.Errorf("Append (-want +got):\n%s", diff)
		}
		prefix := []byte{0xff, 0xee}
		got := knownPacket.Append(prefix)
		if diff := cmp.Diff(append([]byte{0xff, 0xee}, knownBytes...), got); diff != "" {
			t.Errorf("Append to prefix (-want +got):\n%s", diff)
		}
	})
	t.Run("unmarshal", func(t *testing.T) {
		got, err := Unmarshal(knownBytes)
		if err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if diff := cmp.Diff(knownPacket, got); diff != "" {
			t.Errorf("Unmarshal (-want +got):\n%s", diff)
		}
	})
}

func TestPacketFlags(t *testing.T) {
	base := Packet{State: StateDown, DetectMult: 1, MyDiscriminator: 1}
	tests := []struct {
		name  string
		set   func(*Packet)
		byte1 byte
		valid bool // Unmarshal accepts it
	}{
		{"none", func(*Packet) {}, 0x40, true},
		{"poll", func(p *Packet) { p.Poll = true }, 0x60, true},
		{"final", func(p *Packet) { p.Final = true }, 0x50, true},
		{"cpi", func(p *Packet) { p.ControlPlaneIndependent = true }, 0x48, true},
		{"auth", func(p *Packet) { p.AuthPresent = true }, 0x44, false},
		{"demand", func(p *Packet) { p.Demand = true }, 0x42, true},
		{"multipoint", func(p *Packet) { p.Multipoint = true }, 0x41, false},
		{"admindown", func(p *Packet) { p.State = StateAdminDown }, 0x00, true},
		{"init", func(p *Packet) { p.State = StateInit; p.YourDiscriminator = 9 }, 0x80, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.set(&p)
			b := p.Append(nil)
			if b[1] != tt.byte1 {
				t.Errorf("byte 1 = %#02x, want %#02x", b[1], tt.byte1)
			}
			got, err := Unmarshal(b)
			if (err == nil) != tt.valid {
				t.Fatalf("Unmarshal error = %v, want valid %v", err, tt.valid)
			}
			if err == nil {
				if diff := cmp.Diff(p, got); diff != "" {
					t.Errorf("round trip (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestPacketIntervals(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want []byte
	}{
		{"zero", 0, []byte{0, 0, 0, 0}},
		{"truncated", 1999 * time.Nanosecond, []byte{0, 0, 0, 1}},
		{"negative", -time.Second, []byte{0, 0, 0, 0}},
		{"max", math.MaxUint32 * time.Microsecond, []byte{0xff, 0xff, 0xff, 0xff}},
		{"clamped", (math.MaxUint32 + 1) * time.Microsecond, []byte{0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Packet{DesiredMinTx: tt.d, RequiredMinRx: tt.d, RequiredMinEchoRx: tt.d}.Append(nil)
			for _, off := range []int{12, 16, 20} {
				if diff := cmp.Diff(tt.want, b[off:off+4]); diff != "" {
					t.Errorf("bytes %d-%d (-want +got):\n%s", off, off+3, diff)
				}
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	// mod returns a copy of knownBytes changed by f.
	mod := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), knownBytes...))
	}
	tests := []struct {
		name string
		b    []byte
		want error // nil: accepted
	}{
		{"valid", knownBytes, nil},
		{"empty", nil, ErrTooShort},
		{"23 bytes", knownBytes[:23], ErrTooShort},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0x05; return b }), ErrVersion},
		{"version 2", mod(func(b []byte) []byte { b[0] = 0x45; return b }), ErrVersion},
		{"length 23", mod(func(b []byte) []byte { b[3] = 23; return b }), ErrLength},
		{"length 0", mod(func(b []byte) []byte { b[3] = 0; return b }), ErrLength},
		{"length past data", mod(func(b []byte) []byte { b[3] = 25; return b }), ErrLength},
		{"longer length with data", mod(func(b []byte) []byte { b[3] = 26; return append(b, 1, 2) }), nil},
		{"trailing bytes", mod(func(b []byte) []byte { return append(b, 7, 7, 7) }), nil},
		{"auth bit", mod(func(b []byte) []byte { b[1] |= 0x04; return b }), ErrAuth},
		{"auth bit with auth section", mod(func(b []byte) []byte { b[1] |= 0x04; b[3] = 26; return append(b, 1, 2) }), ErrAuth},
		{"detect mult 0", mod(func(b []byte) []byte { b[2] = 0; return b }), ErrDetectMult},
		{"multipoint", mod(func(b []byte) []byte { b[1] |= 0x01; return b }), ErrMultipoint},
		{"my discriminator 0", mod(func(b []byte) []byte { clear(b[4:8]); return b }), ErrMyDiscriminator},
		{"your discriminator 0 in Up", mod(func(b []byte) []byte { clear(b[8:12]); return b }), ErrYourDiscriminator},
		{"your discriminator 0 in Init", mod(func(b []byte) []byte { b[1] = 0x80; clear(b[8:12]); return b }), ErrYourDiscriminator},
		{"your discriminator 0 in Down", mod(func(b []byte) []byte { b[1] = 0x40; clear(b[8:12]); return b }), nil},
		{"your discriminator 0 in AdminDown", mod(func(b []byte) []byte { b[1] = 0x00; clear(b[8:12]); return b }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Unmarshal(tt.b)
			if !errors.Is(err, tt.want) { // errors.Is(err, nil) is err == nil
				t.Fatalf("Unmarshal error = %v, want %v", err, tt.want)
			}
			if err != nil && p != (Packet{}) {
				t.Errorf("Unmarshal returned %+v with error", p)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	var states, diags []string
	for s := range State(5) {
		states = append(states, s.String())
	}
	for d := range Diag(10) {
		diags = append(diags, d.String())
	}
	wantStates := []string{"AdminDown", "Down", "Init", "Up", "State(4)"}
	wantDiags := []string{
		"none", "control detection time expired", "echo function failed",
		"neighbor signaled session down", "forwarding plane reset", "path down",
		"concatenated path down", "administratively down",
		"reverse concatenated path down", "diag 9",
	}
	if diff := cmp.Diff(wantStates, states); diff != "" {
		t.Errorf("State.String (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDiags, diags); diff != "" {
		t.Errorf("Diag.String (-want +got):\n%s", diff)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(knownBytes)
	f.Add(Packet{State: StateDown, DetectMult: 1, MyDiscriminator: 1, Final: true, Demand: true}.Append(nil))
	f.Add(append(append([]byte(nil), knownBytes...), 0xde, 0xad)) // trailing bytes
	f.Add(knownBytes[:23])                                        // short
	f.Add([]byte{})
	broken := append([]byte(nil), knownBytes...)
	broken[0] = 0x45 // version 2
	f.Add(broken)
	broken = append([]byte(nil), knownBytes...)
	broken[3] = 200 // length past the data
	f.Add(broken)
	broken = append([]byte(nil), knownBytes...)
	broken[1] |= 0x05 // auth and multipoint
	f.Add(broken)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Unmarshal(b)
		if err != nil {
			return
		}
		wire := p.Append(nil)
		if len(wire) != PacketLen {
			t.Fatalf("Append gave %d bytes", len(wire))
		}
		q, err := Unmarshal(wire)
		if err != nil {
			t.Fatalf("Unmarshal(Append(%+v)): %v", p, err)
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
	})
}
