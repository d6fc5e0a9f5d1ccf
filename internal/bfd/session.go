package bfd

import "time"

// slowTx is the least Desired Min TX a session uses while it is not Up
// (RFC 5880 section 6.8.3).
const slowTx = time.Second

// Config are a session's local settings.
type Config struct {
	// DesiredMinTx is bfd.DesiredMinTxInterval once Up; while not Up at
	// least 1s is used (RFC 5880 section 6.8.3).
	DesiredMinTx time.Duration
	// RequiredMinRx is bfd.RequiredMinRxInterval; 0 asks the remote to send
	// nothing periodically.
	RequiredMinRx time.Duration
	// DetectMult is bfd.DetectMult; it must be at least 1, since the remote
	// discards packets carrying 0.
	DetectMult uint8
	// Passive sends nothing until a packet from the remote arrived
	// (RemoteDiscriminator != 0), section 6.1.
	Passive bool
}

// Jitter returns a value in [0,1); the session uses it to spread its
// transmissions. Values outside [0,1) are taken as 0, and so is a nil Jitter.
type Jitter func() float64

// Session is the state of one BFD session in asynchronous mode. The zero
// value is not usable; create one with NewSession.
type Session struct {
	cfg    Config
	myDisc uint32
	jitter Jitter

	state State
	diag  Diag

	// Last values received from the remote (section 6.8.1).
	remoteDisc       uint32
	remoteState      State
	remoteDetectMult uint8         // 0 until a packet arrived
	remoteMinTx      time.Duration // its Desired Min TX
	remoteMinRx      time.Duration // bfd.RemoteMinRxInterval

	// advTx and advRx are the local intervals as advertised; txInUse and
	// rxInUse those used for timing. They differ only during a Poll Sequence
	// started while Up (section 6.8.3).
	advTx, advRx     time.Duration
	txInUse, rxInUse time.Duration

	poll      bool // a Poll Sequence is in progress
	pollAgain bool // the parameters changed again during it: poll once more
	final     bool // the next packet answers a Poll

	txArmed bool // nextTx is the next periodic transmission
	nextTx  time.Time
	rxArmed bool // lastRx arms the detection timer
	lastRx  time.Time
}

// NewSession returns a session in state Down with local discriminator myDisc
// (nonzero, unique among the caller's sessions). The remote Required Min RX
// starts at 1µs (section 6.8.1), so an active session's first transmission
// is due at now.
func NewSession(cfg Config, myDisc uint32, jitter Jitter, now time.Time) *Session {
	s := &Session{
		cfg:         cfg,
		myDisc:      myDisc,
		jitter:      jitter,
		state:       StateDown,
		remoteState: StateDown,
		remoteMinRx: time.Microsecond,
	}
	s.retime()
	s.resume(now)
	return s
}

// State is the local session state.
func (s *Session) State() State { return s.state }

// Diag is the local diagnostic: why the session last went down.
func (s *Session) Diag() Diag { return s.diag }

// RemoteState is the state the remote last reported (Down before any packet).
func (s *Session) RemoteState() State { return s.remoteState }

// RemoteDiscriminator is the remote's discriminator, 0 while unknown or
// after the detection time expired.
func (s *Session) RemoteDiscriminator() uint32 { return s.remoteDisc }

// MyDiscriminator is the local discriminator.
func (s *Session) MyDiscriminator() uint32 { return s.myDisc }

// Config returns the local settings.
func (s *Session) Config() Config { return s.cfg }

// SetConfig changes the local settings; while Up a change of DesiredMinTx or
// RequiredMinRx starts a Poll sequence (6.8.3). While not Up the new values
// apply at once.
func (s *Session) SetConfig(cfg Config, now time.Time) {
	s.cfg = cfg
	s.retime()
	s.resume(now)
}

// Receive processes a packet for this session (already validated by
// Unmarshal and matched to the session by the caller) and reports whether a
// packet must be sent at once (a reply with the Final bit to a Poll, or a
// state change the remote should learn now). The caller then sends
// Transmit(now).
func (s *Session) Receive(p Packet, now time.Time) (sendNow bool) {
	// Section 6.8.6, in its order: record the remote's values, end a Poll
	// Sequence, then run the state machine unless AdminDown.
	s.remoteDisc = p.MyDiscriminator
	s.remoteState = p.State
	s.remoteDetectMult = p.DetectMult
	s.remoteMinTx = p.DesiredMinTx
	s.remoteMinRx = p.RequiredMinRx
	s.rxArmed, s.lastRx = true, now
	if p.Final && s.poll {
		if s.pollAgain {
			// The Final may answer a Poll sent before the last change.
			s.pollAgain = false
		} else {
			s.poll = false
			s.txInUse, s.rxInUse = s.advTx, s.advRx
		}
	}
	s.resume(now)
	if s.state == StateAdminDown {
		return false
	}
	old := s.state
	switch {
	case p.State == StateAdminDown:
		if s.state != StateDown {
			s.goDown(DiagNeighborDown)
		}
	case s.state == StateDown:
		if p.State == StateDown {
			s.setState(StateInit)
		} else if p.State == StateInit {
			s.setState(StateUp)
		}
	case s.state == StateInit:
		if p.State == StateInit || p.State == StateUp {
			s.setState(StateUp)
		}
	case p.State == StateDown: // local Up
		s.goDown(DiagNeighborDown)
	}
	if p.Poll {
		s.final = true
	}
	return s.state != old || p.Poll
}

// Expire checks the detection timer: in Init or Up, if no packet arrived
// within the detection time, the session goes Down with DiagTimeExpired.
// Whatever the state, the remote discriminator is then reset to 0 (section
// 6.8.1) and the timer stays disarmed until the next packet. Reports whether
// the state changed.
func (s *Session) Expire(now time.Time) bool {
	if !s.rxArmed || now.Before(s.lastRx.Add(s.DetectionTime())) {
		return false
	}
	s.rxArmed = false
	s.remoteDisc = 0
	if s.state != StateInit && s.state != StateUp {
		return false
	}
	s.goDown(DiagTimeExpired)
	return true
}

// NextEvent is the earliest time the caller must call back (the next
// periodic transmission or the detection deadline, whichever comes first);
// zero if nothing is scheduled.
func (s *Session) NextEvent() time.Time {
	var t time.Time
	if s.txArmed && s.periodic() {
		t = s.nextTx
	}
	if s.rxArmed {
		if d := s.lastRx.Add(s.DetectionTime()); t.IsZero() || d.Before(t) {
			t = d
		}
	}
	return t
}

// DueTx reports whether a periodic packet is due at now.
func (s *Session) DueTx(now time.Time) bool {
	return s.txArmed && s.periodic() && !now.Before(s.nextTx)
}

// Transmit returns the packet to send now (periodic, or the immediate one
// Receive asked for) and schedules the next periodic one: interval ×
// (0.75 + 0.25×jitter()), with DetectMult 1 × (0.75 + 0.15×jitter())
// (section 6.8.7).
func (s *Session) Transmit(now time.Time) Packet {
	p := Packet{
		Diag:              s.diag,
		State:             s.state,
		Poll:              (s.poll || s.soliciting()) && !s.final, // never both (section 6.5)
		Final:             s.final,
		DetectMult:        s.cfg.DetectMult,
		MyDiscriminator:   s.myDisc,
		YourDiscriminator: s.remoteDisc,
		DesiredMinTx:      s.advTx,
		RequiredMinRx:     s.advRx,
	}
	s.final = false
	s.txArmed = s.periodic()
	if s.txArmed {
		s.nextTx = now.Add(s.txInterval())
	}
	return p
}

// Shutdown puts the session AdminDown with DiagAdminDown (section 6.8.16).
// Packets keep going out, the first one at now, so the remote learns it;
// Receive then ignores everything. There is no way back: create a new
// Session.
func (s *Session) Shutdown(now time.Time) {
	s.diag = DiagAdminDown
	s.setState(StateAdminDown)
	s.txArmed, s.nextTx = true, now
}

// DetectionTime is the current detection time (0 before any packet was
// received): the remote Detect Mult × max(local Required Min RX in use,
// remote Desired Min TX), section 6.8.4.
func (s *Session) DetectionTime() time.Duration {
	return time.Duration(s.remoteDetectMult) * max(s.rxInUse, s.remoteMinTx)
}

func (s *Session) goDown(d Diag) {
	s.diag = d
	s.setState(StateDown)
}

func (s *Session) setState(st State) {
	s.state = st
	s.retime()
}

// retime recomputes the advertised intervals after the state or the
// settings changed and decides which ones are in use (section 6.8.3).
func (s *Session) retime() {
	tx, rx := s.cfg.DesiredMinTx, s.cfg.RequiredMinRx
	if s.state != StateUp {
		tx = max(tx, slowTx)
	}
	changed := tx != s.advTx || rx != s.advRx
	s.advTx, s.advRx = tx, rx
	if s.state != StateUp {
		// Nothing to protect outside Up: apply at once, no Poll Sequence.
		s.txInUse, s.rxInUse = tx, rx
		s.poll, s.pollAgain = false, false
		return
	}
	if !changed {
		return
	}
	// Sending faster or accepting slower is safe at once; the opposite must
	// wait until the remote acknowledged the new values with Final.
	s.txInUse = min(s.txInUse, tx)
	s.rxInUse = max(s.rxInUse, rx)
	if s.poll {
		s.pollAgain = true // one sequence at a time (section 6.5)
	} else {
		s.poll = true
	}
}

// soliciting reports whether packets ask for an answer at once: while Down
// or Init every packet carries Poll, which the remote must answer with
// Final "without respect to the transmission timers ... [or] the session
// state" (section 6.5). Its periodic packets come at most once a second
// until the session is Up; the Final brings its state now, so the
// three-way handshake takes round trips instead of up to two of its
// seconds. A Final received while not Up commits nothing: the intervals
// already apply at once there.
func (s *Session) soliciting() bool {
	return s.state == StateDown || s.state == StateInit
}

// periodic reports whether periodic transmission is allowed: not while the
// remote asks for none (section 6.8.7), nor while a passive session has not
// heard from its peer (section 6.1).
func (s *Session) periodic() bool {
	return s.remoteMinRx != 0 && !(s.cfg.Passive && s.remoteDisc == 0)
}

// resume schedules a transmission at now when periodic transmission has
// just become allowed.
func (s *Session) resume(now time.Time) {
	if !s.txArmed && s.periodic() {
		s.txArmed, s.nextTx = true, now
	}
}

// txInterval is the time to the next periodic packet (section 6.8.7).
func (s *Session) txInterval() time.Duration {
	iv := max(s.txInUse, s.remoteMinRx, time.Microsecond)
	j := 0.0
	if s.jitter != nil {
		j = s.jitter()
	}
	if !(j >= 0 && j < 1) {
		j = 0
	}
	spread := 0.25
	if s.cfg.DetectMult == 1 {
		spread = 0.15 // at most 90% of the interval
	}
	return time.Duration(float64(iv) * (0.75 + spread*j))
}
