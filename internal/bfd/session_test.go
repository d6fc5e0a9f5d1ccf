package bfd

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// fast is a typical configuration: 300ms × 3.
var fast = Config{DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms, DetectMult: 3}

func fixed(v float64) Jitter { return func() float64 { return v } }

// wire passes p through the codec, as the adapter will.
func wire(t *testing.T, p Packet) Packet {
	t.Helper()
	q, err := Unmarshal(p.Append(nil))
	if err != nil {
		t.Fatalf("Unmarshal(%+v): %v", p, err)
	}
	return q
}

// exchange sends from's packet to to, then the immediate replies back and
// forth until nobody asks for one; it returns the packets sent.
func exchange(t *testing.T, from, to *Session, now time.Time) []Packet {
	t.Helper()
	var sent []Packet
	for range 10 {
		p := from.Transmit(now)
		sent = append(sent, p)
		if !to.Receive(wire(t, p), now) {
			return sent
		}
		from, to = to, from
	}
	t.Fatalf("endless exchange: %+v", sent)
	return nil
}

// pair returns two sessions (discriminators 1 and 2, jitter 0.5) that are Up
// at t0 with their Poll Sequences over.
func pair(t *testing.T, cfgA, cfgB Config) (a, b *Session) {
	t.Helper()
	a = NewSession(cfgA, 1, fixed(0.5), t0)
	b = NewSession(cfgB, 2, fixed(0.5), t0)
	exchange(t, a, b, t0) // a: Down→Up, b: Down→Init→Up, a's Poll answered
	exchange(t, b, a, t0) // b's Poll answered
	if a.State() != StateUp || b.State() != StateUp {
		t.Fatalf("pair: states %v, %v", a.State(), b.State())
	}
	for _, s := range []*Session{a, b} {
		if p := s.Transmit(t0); p.Poll || p.Final {
			t.Fatalf("pair: Poll Sequence still running: %+v", p)
		}
	}
	return a, b
}

// gap returns the time from now to the next scheduled transmission.
func gap(s *Session, now time.Time) time.Duration {
	if !s.txArmed || !s.periodic() {
		return -1
	}
	return s.nextTx.Sub(now)
}

// sim connects two sessions through a link with a fixed delay, driven by
// NextEvent like the adapter will.
type sim struct {
	t      *testing.T
	now    time.Time
	delay  time.Duration
	s      [2]*Session
	drop   [2]bool // drop[i]: packets to s[i] are lost
	flight []flight
	sent   [2][]sent
	lastRx [2]time.Time
	states [2][]State // the states each session went through
}

type flight struct {
	at time.Time
	to int
	b  []byte
}

// sent is a transmitted packet, At since t0.
type sent struct {
	At                time.Duration
	State             State
	Poll, Final       bool
	YourDiscriminator uint32
	DesiredMinTx      time.Duration
}

func newSim(t *testing.T, delay time.Duration, cfg Config, jitter Jitter) *sim {
	m := &sim{t: t, now: t0, delay: delay}
	for i := range m.s {
		m.s[i] = NewSession(cfg, uint32(i+1), jitter, t0)
		m.states[i] = []State{StateDown}
	}
	return m
}

func (m *sim) transmit(i int) {
	p := m.s[i].Transmit(m.now)
	m.sent[i] = append(m.sent[i], sent{m.now.Sub(t0), p.State, p.Poll, p.Final, p.YourDiscriminator, p.DesiredMinTx})
	if !m.drop[1-i] {
		m.flight = append(m.flight, flight{m.now.Add(m.delay), 1 - i, p.Append(nil)})
	}
}

func (m *sim) note(i int) {
	if st := m.s[i].State(); st != m.states[i][len(m.states[i])-1] {
		m.states[i] = append(m.states[i], st)
	}
}

func (m *sim) next() time.Time {
	var n time.Time
	for _, f := range m.flight {
		if n.IsZero() || f.at.Before(n) {
			n = f.at
		}
	}
	for _, s := range m.s {
		if e := s.NextEvent(); !e.IsZero() && (n.IsZero() || e.Before(n)) {
			n = e
		}
	}
	return n
}

// run processes every event up to and including until.
func (m *sim) run(until time.Time) {
	for steps := 0; ; steps++ {
		if steps > 100000 {
			m.t.Fatal("sim: too many steps")
		}
		n := m.next()
		if n.IsZero() || n.After(until) {
			break
		}
		m.now = n
		for {
			k := slices.IndexFunc(m.flight, func(f flight) bool { return !f.at.After(m.now) })
			if k < 0 {
				break
			}
			f := m.flight[k]
			m.flight = slices.Delete(m.flight, k, k+1)
			p, err := Unmarshal(f.b)
			if err != nil {
				m.t.Fatalf("sim: %v", err)
			}
			m.lastRx[f.to] = m.now
			if m.s[f.to].Receive(p, m.now) {
				m.transmit(f.to)
			}
			m.note(f.to)
		}
		for i, s := range m.s {
			s.Expire(m.now)
			m.note(i)
			if s.DueTx(m.now) {
				m.transmit(i)
			}
		}
	}
	m.now = until
}

func TestNewSession(t *testing.T) {
	type view struct {
		State, RemoteState State
		Diag               Diag
		RemoteDisc, MyDisc uint32
		Detection          time.Duration
		Next               time.Time
		DueBefore, DueAt   bool
		Config             Config
	}
	s := NewSession(fast, 7, fixed(0), t0)
	got := view{s.State(), s.RemoteState(), s.Diag(), s.RemoteDiscriminator(), s.MyDiscriminator(),
		s.DetectionTime(), s.NextEvent(), s.DueTx(t0.Add(-1)), s.DueTx(t0), s.Config()}
	want := view{StateDown, StateDown, DiagNone, 0, 7, 0, t0, false, true, fast}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("new session (-want +got):\n%s", diff)
	}
	wantP := Packet{State: StateDown, Poll: true, DetectMult: 3, MyDiscriminator: 7, DesiredMinTx: time.Second, RequiredMinRx: 300 * ms}
	if diff := cmp.Diff(wantP, s.Transmit(t0)); diff != "" {
		t.Errorf("first packet (-want +got):\n%s", diff)
	}
}

func TestHandshake(t *testing.T) {
	m := newSim(t, ms, fast, fixed(0.5))
	m.run(t0.Add(2 * time.Second))
	for i, s := range m.s {
		if diff := cmp.Diff([]State{StateDown, StateInit, StateUp}, m.states[i]); diff != "" {
			t.Errorf("session %d states (-want +got):\n%s", i+1, diff)
		}
		if got, want := s.RemoteDiscriminator(), uint32(2-i); got != want {
			t.Errorf("session %d remote discriminator = %d, want %d", i+1, got, want)
		}
		if got := s.RemoteState(); got != StateUp {
			t.Errorf("session %d remote state = %v, want Up", i+1, got)
		}
	}
	// Both send Down with Poll at t0 and cross; each then answers with
	// Init and Final, then sends Up with Poll (Desired Min TX falls from 1s
	// to 300ms), answers the other's Poll with Final, and after the Final
	// it got sends every 300ms × 0.875.
	for i := range m.s {
		you := uint32(2 - i)
		want := []sent{
			{0, StateDown, true, false, 0, time.Second},
			{1 * ms, StateInit, false, true, you, time.Second},
			{2 * ms, StateUp, true, false, you, 300 * ms},
			{3 * ms, StateUp, false, true, you, 300 * ms},
			{3*ms + 262500*time.Microsecond, StateUp, false, false, you, 300 * ms},
			{3*ms + 525*ms, StateUp, false, false, you, 300 * ms},
		}
		if len(m.sent[i]) < len(want) {
			t.Fatalf("session %d sent only %+v", i+1, m.sent[i])
		}
		if diff := cmp.Diff(want, m.sent[i][:len(want)]); diff != "" {
			t.Errorf("session %d packets (-want +got):\n%s", i+1, diff)
		}
		for k, p := range m.sent[i][4:] {
			if p.Poll || p.Final || p.State != StateUp {
				t.Errorf("session %d packet %d = %+v, want Up without Poll or Final", i+1, k+4, p)
			}
			if g := p.At - m.sent[i][k+3].At; g != 262500*time.Microsecond {
				t.Errorf("session %d packet %d: gap %v, want 262.5ms", i+1, k+4, g)
			}
		}
	}
}

func TestPollSequence(t *testing.T) {
	for _, j := range []float64{0, 0.5, 0.999} {
		t.Run("", func(t *testing.T) {
			a := NewSession(fast, 1, fixed(j), t0)
			b := NewSession(fast, 2, fixed(j), t0)
			if !b.Receive(wire(t, a.Transmit(t0)), t0) { // b: Init
				t.Fatal("b did not answer")
			}
			if !a.Receive(wire(t, b.Transmit(t0)), t0) || a.State() != StateUp {
				t.Fatalf("a: state %v, want Up and an answer", a.State())
			}
			// b hears nothing for a while: every packet of a carries Poll.
			now := t0
			var p Packet
			for k := range 3 {
				p = a.Transmit(now)
				if !p.Poll || p.Final || p.DesiredMinTx != 300*ms {
					t.Fatalf("packet %d: %+v, want Poll with 300ms", k, p)
				}
				// The smaller interval is used at once (section 6.8.3).
				g := gap(a, now)
				if g < 225*ms || g >= 300*ms {
					t.Fatalf("packet %d: gap %v not in [225ms, 300ms)", k, g)
				}
				now = now.Add(g)
			}
			if !b.Receive(wire(t, p), now) || b.State() != StateUp {
				t.Fatalf("b: state %v, want Up and an answer", b.State())
			}
			f := b.Transmit(now)
			if !f.Final || f.Poll {
				t.Fatalf("b's answer %+v: want Final without Poll", f)
			}
			if a.Receive(wire(t, f), now) {
				t.Error("Final alone asked for an answer")
			}
			for k := range 3 {
				if p := a.Transmit(now); p.Poll || p.Final {
					t.Fatalf("packet %d after Final: %+v", k, p)
				}
				g := gap(a, now)
				if g < 225*ms || g >= 300*ms {
					t.Fatalf("packet %d after Final: gap %v not in [225ms, 300ms)", k, g)
				}
				now = now.Add(g)
			}
			// b's own sequence is still to run.
			if p := b.Transmit(now); !p.Poll {
				t.Errorf("b's next packet %+v: want Poll", p)
			}
		})
	}
}

func TestDetectionTimeout(t *testing.T) {
	m := newSim(t, ms, fast, fixed(0.5))
	m.run(t0.Add(2 * time.Second))
	a, b := m.s[0], m.s[1]
	if a.State() != StateUp {
		t.Fatalf("a: %v, want Up", a.State())
	}
	if got, want := a.DetectionTime(), 900*ms; got != want {
		t.Fatalf("detection time %v, want %v", got, want)
	}
	m.drop[0] = true          // b's packets stop reaching a
	m.run(m.now.Add(10 * ms)) // those in flight arrive
	deadline := m.lastRx[0].Add(900 * ms)
	m.run(deadline.Add(-1))
	if a.State() != StateUp || a.RemoteDiscriminator() != 2 {
		t.Fatalf("1ns before the deadline: %v, remote %d; want Up, 2", a.State(), a.RemoteDiscriminator())
	}
	if got := a.NextEvent(); got != deadline {
		t.Errorf("NextEvent %v, want the deadline %v", got, deadline)
	}
	m.run(deadline)
	got := []any{a.State(), a.Diag(), a.RemoteDiscriminator()}
	if diff := cmp.Diff([]any{StateDown, DiagTimeExpired, uint32(0)}, got); diff != "" {
		t.Errorf("at the deadline (-want +got):\n%s", diff)
	}
	// a's next packets say Down, with Your Discriminator 0 and the diag.
	m.run(m.now.Add(2 * time.Second))
	last := m.sent[0][len(m.sent[0])-1]
	if last.State != StateDown || last.YourDiscriminator != 0 || last.DesiredMinTx != time.Second {
		t.Errorf("a's last packet %+v: want Down, Your Discriminator 0, 1s", last)
	}
	if b.Diag() != DiagNeighborDown || !slices.Contains(m.states[1][2:], StateDown) {
		t.Errorf("b: states %v, diag %v; want it to go Down with neighbor down", m.states[1], b.Diag())
	}
}

func TestExpire(t *testing.T) {
	tests := []struct {
		name      string
		remote    State // state of the one packet received at t0
		wantState State
		wantDiag  Diag
		changed   bool
	}{
		{"Init", StateDown, StateDown, DiagTimeExpired, true},
		{"Up", StateInit, StateDown, DiagTimeExpired, true},
		{"Down", StateAdminDown, StateDown, DiagNone, false},
		{"Down after Up", StateUp, StateDown, DiagNone, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(fast, 1, fixed(0), t0)
			s.Receive(Packet{State: tt.remote, DetectMult: 2, MyDiscriminator: 2, YourDiscriminator: 1,
				DesiredMinTx: 500 * ms, RequiredMinRx: 300 * ms}, t0)
			deadline := t0.Add(2 * 500 * ms)
			if s.Expire(deadline.Add(-1)) || s.RemoteDiscriminator() != 2 {
				t.Fatalf("expired early: %v, remote %d", s.State(), s.RemoteDiscriminator())
			}
			if got := s.Expire(deadline); got != tt.changed {
				t.Errorf("Expire = %v, want %v", got, tt.changed)
			}
			got := []any{s.State(), s.Diag(), s.RemoteDiscriminator()}
			if diff := cmp.Diff([]any{tt.wantState, tt.wantDiag, uint32(0)}, got); diff != "" {
				t.Errorf("after Expire (-want +got):\n%s", diff)
			}
			// Disarmed until the next packet.
			if s.Expire(deadline.Add(time.Hour)) {
				t.Error("expired twice")
			}
			if next := s.NextEvent(); !next.Before(deadline) {
				t.Errorf("NextEvent %v still past the deadline", next)
			}
		})
	}
}

func TestReceive(t *testing.T) {
	// local returns a session (discriminator 1, remote 2) in state st at t0.
	local := func(t *testing.T, st State) *Session {
		s := NewSession(fast, 1, fixed(0), t0)
		p := Packet{DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second, RequiredMinRx: time.Second}
		switch st {
		case StateInit:
			p.State = StateDown
			s.Receive(p, t0)
		case StateUp:
			p.State, p.YourDiscriminator = StateInit, 1
			s.Receive(p, t0)
		case StateAdminDown:
			s.Shutdown(t0)
		}
		if s.State() != st {
			t.Fatalf("setup: state %v, want %v", s.State(), st)
		}
		s.Transmit(t0)
		return s
	}
	tests := []struct {
		local, remote State
		poll          bool
		want          State
		wantDiag      Diag
		sendNow       bool
	}{
		{StateDown, StateAdminDown, false, StateDown, DiagNone, false},
		{StateDown, StateDown, false, StateInit, DiagNone, true},
		{StateDown, StateInit, false, StateUp, DiagNone, true},
		{StateDown, StateUp, false, StateDown, DiagNone, false},
		{StateInit, StateAdminDown, false, StateDown, DiagNeighborDown, true},
		{StateInit, StateDown, false, StateInit, DiagNone, false},
		{StateInit, StateInit, false, StateUp, DiagNone, true},
		{StateInit, StateUp, false, StateUp, DiagNone, true},
		{StateUp, StateAdminDown, false, StateDown, DiagNeighborDown, true},
		{StateUp, StateDown, false, StateDown, DiagNeighborDown, true},
		{StateUp, StateInit, false, StateUp, DiagNone, false},
		{StateUp, StateUp, false, StateUp, DiagNone, false},
		{StateAdminDown, StateDown, false, StateAdminDown, DiagAdminDown, false},
		{StateAdminDown, StateUp, false, StateAdminDown, DiagAdminDown, false},
		{StateAdminDown, StateUp, true, StateAdminDown, DiagAdminDown, false},
		{StateDown, StateUp, true, StateDown, DiagNone, true},
		{StateUp, StateUp, true, StateUp, DiagNone, true},
	}
	for _, tt := range tests {
		name := tt.local.String() + "+" + tt.remote.String()
		if tt.poll {
			name += "+Poll"
		}
		t.Run(name, func(t *testing.T) {
			s := local(t, tt.local)
			now := t0.Add(10 * ms)
			p := Packet{State: tt.remote, Poll: tt.poll, DetectMult: 5, MyDiscriminator: 9, YourDiscriminator: 1,
				DesiredMinTx: 400 * ms, RequiredMinRx: 200 * ms}
			sendNow := s.Receive(p, now)
			got := []any{s.State(), s.Diag(), sendNow, s.RemoteState(), s.RemoteDiscriminator()}
			want := []any{tt.want, tt.wantDiag, tt.sendNow, tt.remote, uint32(9)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("state, diag, sendNow, remote state, remote discriminator (-want +got):\n%s", diff)
			}
			out := s.Transmit(now)
			wantFinal := tt.poll && tt.local != StateAdminDown
			if out.Final != wantFinal || (out.Final && out.Poll) {
				t.Errorf("next packet %+v: want Final %v and not both Poll and Final", out, wantFinal)
			}
			if out.State != tt.want || out.Diag != tt.wantDiag || out.YourDiscriminator != 9 {
				t.Errorf("next packet %+v: want state %v, diag %v, your discriminator 9", out, tt.want, tt.wantDiag)
			}
			if got := s.DetectionTime(); got != 5*400*ms {
				t.Errorf("detection time %v, want 2s", got)
			}
		})
	}
}

func TestPassive(t *testing.T) {
	tests := []struct {
		remote  State
		sendNow bool
		want    Packet
	}{
		{StateDown, true, Packet{State: StateInit, Poll: true, DetectMult: 3, MyDiscriminator: 1, YourDiscriminator: 2,
			DesiredMinTx: time.Second, RequiredMinRx: 300 * ms}},
		{StateAdminDown, false, Packet{State: StateDown, Poll: true, DetectMult: 3, MyDiscriminator: 1, YourDiscriminator: 2,
			DesiredMinTx: time.Second, RequiredMinRx: 300 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.remote.String(), func(t *testing.T) {
			cfg := fast
			cfg.Passive = true
			s := NewSession(cfg, 1, fixed(0), t0)
			if n := s.NextEvent(); !n.IsZero() {
				t.Errorf("NextEvent = %v, want zero", n)
			}
			for _, at := range []time.Duration{0, time.Second, time.Hour} {
				if s.DueTx(t0.Add(at)) {
					t.Errorf("DueTx at +%v before any packet", at)
				}
			}
			now := t0.Add(5 * time.Second)
			if got := s.Receive(Packet{State: tt.remote, DetectMult: 3, MyDiscriminator: 2,
				DesiredMinTx: time.Second, RequiredMinRx: time.Second}, now); got != tt.sendNow {
				t.Errorf("Receive = %v, want %v", got, tt.sendNow)
			}
			if !s.DueTx(now) {
				t.Error("periodic transmission did not start")
			}
			if diff := cmp.Diff(tt.want, s.Transmit(now)); diff != "" {
				t.Errorf("packet (-want +got):\n%s", diff)
			}
			if g := gap(s, now); g != 750*ms {
				t.Errorf("gap %v, want 750ms", g)
			}
		})
	}
}

func TestIntervalNotUp(t *testing.T) {
	tests := []struct {
		name   string
		tx     time.Duration
		state  State
		jitter float64
		want   time.Duration
	}{
		{"Down 300ms", 300 * ms, StateDown, 0, 750 * ms},
		{"Down 300ms jitter", 300 * ms, StateDown, 0.5, 875 * ms},
		{"Init 300ms", 300 * ms, StateInit, 0, 750 * ms},
		{"Init 300ms jitter", 300 * ms, StateInit, 0.5, 875 * ms},
		{"Down 2s", 2 * time.Second, StateDown, 0, 1500 * ms},
		{"AdminDown 300ms", 300 * ms, StateAdminDown, 0, 750 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fast
			cfg.DesiredMinTx = tt.tx
			s := NewSession(cfg, 1, fixed(tt.jitter), t0)
			switch tt.state {
			case StateInit:
				s.Receive(Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second, RequiredMinRx: 10 * ms}, t0)
			case StateAdminDown:
				s.Shutdown(t0)
			}
			if s.State() != tt.state {
				t.Fatalf("state %v, want %v", s.State(), tt.state)
			}
			// Down and Init solicit an answer (Poll); AdminDown does not.
			p := s.Transmit(t0)
			if wantPoll := tt.state != StateAdminDown; p.DesiredMinTx != max(tt.tx, time.Second) || p.Poll != wantPoll {
				t.Errorf("packet %+v: want Desired Min TX %v, Poll %v", p, max(tt.tx, time.Second), wantPoll)
			}
			if g := gap(s, t0); g != tt.want {
				t.Errorf("gap %v, want %v", g, tt.want)
			}
		})
	}
}

func TestJitterBounds(t *testing.T) {
	// The remote asks for 2s, more than the local 1s: the interval is 2s.
	tests := []struct {
		mult     uint8
		jitter   Jitter
		min, max time.Duration // inclusive
	}{
		{3, fixed(0), 1500 * ms, 1500 * ms},
		{3, fixed(0.5), 1750 * ms, 1750 * ms},
		{3, fixed(0.999), 1990 * ms, 2*time.Second - 1},
		{1, fixed(0), 1500 * ms, 1500 * ms},
		{1, fixed(0.5), 1650 * ms, 1650 * ms},
		{1, fixed(0.999), 1790 * ms, 1800*ms - 1},
		{3, fixed(1), 1500 * ms, 1500 * ms}, // out of range: taken as 0
		{3, fixed(-0.5), 1500 * ms, 1500 * ms},
		{3, fixed(math.NaN()), 1500 * ms, 1500 * ms},
		{3, nil, 1500 * ms, 1500 * ms},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			cfg := fast
			cfg.DetectMult = tt.mult
			s := NewSession(cfg, 1, tt.jitter, t0)
			s.Receive(Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second, RequiredMinRx: 2 * time.Second}, t0)
			now := t0
			for range 3 {
				s.Transmit(now)
				if g := gap(s, now); g < tt.min || g > tt.max {
					t.Fatalf("mult %d: gap %v not in [%v, %v]", tt.mult, g, tt.min, tt.max)
				}
				now = s.NextEvent()
			}
		})
	}
}

func TestSetConfigWhileUp(t *testing.T) {
	// b asks for 50ms so that a's own Desired Min TX sets the interval.
	cfgB := Config{DesiredMinTx: 300 * ms, RequiredMinRx: 50 * ms, DetectMult: 3}
	tests := []struct {
		name       string
		tx         time.Duration
		gapDuring  time.Duration // after the first Poll packet
		gapAfter   time.Duration // once the Final arrived
		remoteTime time.Duration // b's detection time once it got the Poll
	}{
		{"increase", time.Second, 262500 * time.Microsecond, 875 * ms, 3 * time.Second},
		{"decrease", 100 * ms, 87500 * time.Microsecond, 87500 * time.Microsecond, 300 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t, fast, cfgB)
			now := t0.Add(time.Second)
			cfg := fast
			cfg.DesiredMinTx = tt.tx
			a.SetConfig(cfg, now)
			if a.Config() != cfg {
				t.Errorf("Config() = %+v", a.Config())
			}
			for k := range 2 {
				p := a.Transmit(now)
				if !p.Poll || p.DesiredMinTx != tt.tx {
					t.Fatalf("packet %d: %+v, want Poll with %v", k, p, tt.tx)
				}
				if g := gap(a, now); g != tt.gapDuring {
					t.Fatalf("packet %d: gap %v, want %v", k, g, tt.gapDuring)
				}
				if k == 1 {
					if !b.Receive(wire(t, p), now) {
						t.Fatal("b did not answer the Poll")
					}
				}
				now = now.Add(tt.gapDuring)
			}
			if got := b.DetectionTime(); got != tt.remoteTime {
				t.Errorf("b's detection time %v, want %v", got, tt.remoteTime)
			}
			a.Receive(wire(t, b.Transmit(now)), now) // Final
			if p := a.Transmit(now); p.Poll || p.DesiredMinTx != tt.tx {
				t.Errorf("after Final: %+v, want no Poll, %v", p, tt.tx)
			}
			if g := gap(a, now); g != tt.gapAfter {
				t.Errorf("after Final: gap %v, want %v", g, tt.gapAfter)
			}
		})
	}
	t.Run("not Up", func(t *testing.T) {
		s := NewSession(fast, 1, fixed(0), t0)
		cfg := Config{DesiredMinTx: 2 * time.Second, RequiredMinRx: 100 * ms, DetectMult: 3}
		s.SetConfig(cfg, t0)
		// The new values apply at once, without waiting for a Final (the
		// Poll is Down's solicitation, not a Poll Sequence).
		p := s.Transmit(t0)
		if !p.Poll || p.DesiredMinTx != 2*time.Second || p.RequiredMinRx != 100*ms {
			t.Errorf("packet %+v: want Poll, 2s, 100ms", p)
		}
		if g := gap(s, t0); g != 1500*ms {
			t.Errorf("gap %v, want 1.5s", g)
		}
	})
	t.Run("passive off", func(t *testing.T) {
		cfg := fast
		cfg.Passive = true
		s := NewSession(cfg, 1, fixed(0), t0)
		cfg.Passive = false
		s.SetConfig(cfg, t0.Add(time.Second))
		if got := s.NextEvent(); got != t0.Add(time.Second) {
			t.Errorf("NextEvent %v, want t0+1s", got)
		}
	})
	t.Run("change during a Poll Sequence", func(t *testing.T) {
		a, b := pair(t, fast, cfgB)
		cfg := fast
		cfg.DesiredMinTx = time.Second
		a.SetConfig(cfg, t0)
		p := a.Transmit(t0) // Poll, 1s
		cfg.DesiredMinTx = 2 * time.Second
		a.SetConfig(cfg, t0)
		b.Receive(wire(t, p), t0)
		a.Receive(wire(t, b.Transmit(t0)), t0) // Final to the 1s Poll
		p = a.Transmit(t0)
		if !p.Poll || p.DesiredMinTx != 2*time.Second || gap(a, t0) != 262500*time.Microsecond {
			t.Fatalf("after the first Final: %+v, gap %v; want Poll, 2s, old interval", p, gap(a, t0))
		}
		b.Receive(wire(t, p), t0)
		a.Receive(wire(t, b.Transmit(t0)), t0)
		if p := a.Transmit(t0); p.Poll || gap(a, t0) != 1750*ms {
			t.Errorf("after the second Final: %+v, gap %v; want no Poll, 1.75s", p, gap(a, t0))
		}
	})
}

func TestRequiredMinRxChange(t *testing.T) {
	// b sends every 100ms, so a's Required Min RX sets the detection time.
	cfgB := Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms, DetectMult: 3}
	tests := []struct {
		name          string
		rx            time.Duration
		during, after time.Duration
	}{
		{"decrease", 100 * ms, 900 * ms, 300 * ms},
		{"increase", 500 * ms, 1500 * ms, 1500 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t, fast, cfgB)
			if got := a.DetectionTime(); got != 900*ms {
				t.Fatalf("detection time %v, want 900ms", got)
			}
			cfg := fast
			cfg.RequiredMinRx = tt.rx
			a.SetConfig(cfg, t0)
			if got := a.DetectionTime(); got != tt.during {
				t.Errorf("during the Poll Sequence: %v, want %v", got, tt.during)
			}
			p := a.Transmit(t0)
			if !p.Poll || p.RequiredMinRx != tt.rx {
				t.Errorf("packet %+v: want Poll, %v", p, tt.rx)
			}
			if !b.Receive(wire(t, p), t0) {
				t.Fatal("b did not answer")
			}
			a.Receive(wire(t, b.Transmit(t0)), t0)
			if got := a.DetectionTime(); got != tt.after {
				t.Errorf("after Final: %v, want %v", got, tt.after)
			}
		})
	}
}

func TestRemoteMinRxZero(t *testing.T) {
	s := NewSession(fast, 1, fixed(0), t0)
	p := Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second}
	if !s.Receive(p, t0) {
		t.Fatal("no answer to the state change")
	}
	if got := s.Transmit(t0); got.State != StateInit || got.YourDiscriminator != 2 {
		t.Errorf("answer %+v", got)
	}
	for _, at := range []time.Duration{0, time.Second, time.Hour} {
		if s.DueTx(t0.Add(at)) {
			t.Errorf("DueTx at +%v while the remote wants nothing", at)
		}
	}
	if got, want := s.NextEvent(), t0.Add(3*time.Second); got != want {
		t.Errorf("NextEvent %v, want only the detection deadline %v", got, want)
	}
	now := t0.Add(time.Second)
	p.Poll = true
	if !s.Receive(p, now) {
		t.Error("a Poll got no answer")
	}
	if got := s.Transmit(now); !got.Final {
		t.Errorf("answer %+v: want Final", got)
	}
	p.Poll, p.RequiredMinRx = false, 10*ms
	s.Receive(p, now)
	if !s.DueTx(now) {
		t.Error("periodic transmission did not resume")
	}
}

func TestNextEvent(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		rx       *Packet // received at t0 (then a packet is sent at t0)
		want     time.Duration
		wantZero bool
	}{
		{"first packet", fast, nil, 0, false},
		{"passive", Config{DetectMult: 3, Passive: true}, nil, 0, true},
		{"transmission first", fast,
			&Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second, RequiredMinRx: 10 * ms},
			750 * ms, false},
		{"detection first", Config{DesiredMinTx: 300 * ms, RequiredMinRx: 10 * ms, DetectMult: 3},
			&Packet{State: StateDown, DetectMult: 2, MyDiscriminator: 2, DesiredMinTx: 20 * ms, RequiredMinRx: 10 * ms},
			40 * ms, false},
		{"detection only", fast,
			&Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 2, DesiredMinTx: time.Second},
			3 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(tt.cfg, 1, fixed(0), t0)
			if tt.rx != nil {
				s.Receive(*tt.rx, t0)
				s.Transmit(t0)
			}
			want := t0.Add(tt.want)
			if tt.wantZero {
				want = time.Time{}
			}
			if got := s.NextEvent(); got != want {
				t.Errorf("NextEvent %v, want %v", got, want)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	a, b := pair(t, fast, fast)
	now := t0.Add(10 * ms) // before the next periodic packet
	a.Shutdown(now)
	if a.State() != StateAdminDown || a.Diag() != DiagAdminDown || !a.DueTx(now) {
		t.Fatalf("after Shutdown: %v, %v, due %v", a.State(), a.Diag(), a.DueTx(now))
	}
	p := a.Transmit(now)
	want := Packet{Diag: DiagAdminDown, State: StateAdminDown, DetectMult: 3, MyDiscriminator: 1,
		YourDiscriminator: 2, DesiredMinTx: time.Second, RequiredMinRx: 300 * ms}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("packet (-want +got):\n%s", diff)
	}
	if !b.Receive(wire(t, p), now) || b.State() != StateDown || b.Diag() != DiagNeighborDown {
		t.Errorf("b: %v, %v; want Down with neighbor down", b.State(), b.Diag())
	}
	q := b.Transmit(now)
	q.Poll = true
	if a.Receive(wire(t, q), now) || a.State() != StateAdminDown {
		t.Errorf("a answered or left AdminDown: %v", a.State())
	}
	if p := a.Transmit(now); p.Final || p.State != StateAdminDown {
		t.Errorf("packet after a Poll: %+v", p)
	}
	if g := gap(a, now); g != 875*ms {
		t.Errorf("gap %v, want 875ms", g)
	}
}

// TestSolicitedHandshake: a remote that sends at its slow rate and answers
// at once only when asked (a Poll, section 6.5), as FRR's bfdd does. The
// session's Down and Init packets ask, so both are Up after four packets,
// none of them periodic from the remote; without the Poll the remote's
// next packet would come up to a second later.
func TestSolicitedHandshake(t *testing.T) {
	a := NewSession(fast, 1, fixed(0), t0)
	r := NewSession(fast, 2, fixed(0), t0.Add(-500*ms))
	r.Transmit(t0.Add(-500 * ms)) // its periodic packet, lost; the next is due at +250ms
	// answer is the remote: it takes the packet and replies only to a Poll.
	answer := func(p Packet, now time.Time) (Packet, bool) {
		t.Helper()
		in := wire(t, p)
		r.Receive(in, now)
		if !in.Poll {
			return Packet{}, false
		}
		return wire(t, r.Transmit(now)), true
	}
	now := t0
	p := a.Transmit(now)
	for hop := 0; hop < 3 && a.State() != StateUp; hop++ {
		reply, ok := answer(p, now)
		if !ok {
			t.Fatalf("hop %d: %+v asks for no answer; the remote stays silent until its next periodic packet", hop, p)
		}
		now = now.Add(ms)
		if !a.Receive(reply, now) {
			t.Fatalf("hop %d: %+v changed nothing", hop, reply)
		}
		p = a.Transmit(now)
	}
	if a.State() != StateUp {
		t.Fatalf("state %v after the answers, want Up", a.State())
	}
	// Its Up packet polls for the faster interval; the remote goes Up.
	if _, ok := answer(p, now); !ok || r.State() != StateUp {
		t.Errorf("remote %v after %+v, want Up", r.State(), p)
	}
	if now.After(t0.Add(5 * ms)) {
		t.Errorf("Up at +%v, want within round trips", now.Sub(t0))
	}
}
