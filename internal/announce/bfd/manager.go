package bfd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	fsm "github.com/herald-lb/herald/internal/bfd"
)

// The BFD ports: single-hop (RFC 5881) and multi-hop (RFC 5883) control
// packets.
const (
	PortSingleHop = 3784
	PortMultiHop  = 4784
)

// RFC 5881 section 4: the source port of a session's packets, one per
// session, from this range.
const (
	minSourcePort = 49152
	maxSourcePort = 65535
)

// Peer is one BFD session to have: the router's address and the session's
// settings.
type Peer struct {
	// Name identifies the session in States (the BGPPeer name).
	Name    string
	Address netip.Addr
	// MultiHop sessions use port 4784 and accept packets with a TTL of at
	// least MinimumTTL; single-hop ones port 3784 and only TTL 255.
	MultiHop   bool
	MinimumTTL uint8
	Config     fsm.Config
}

// SessionState is what the manager knows of one session.
type SessionState struct {
	Peer    string
	Address netip.Addr
	State   fsm.State
	// Diag says why the session last went down.
	Diag fsm.Diag
	// RemoteState is the state the router last sent.
	RemoteState fsm.State
	// Since is when State was entered.
	Since time.Time
}

// Options configure a Manager.
type Options struct {
	Log logr.Logger
	// Ports override the listening ports (tests); zero means the
	// standard ones.
	SingleHopPort, MultiHopPort int
	// Keep is asked at the shutdown, per session: true keeps it up until
	// the process exits instead of closing it (AdminDown). The BGP
	// sessions of peers with graceful restart are left for the process's
	// exit to close (the router keeps the routes); an AdminDown before
	// that would make the router close the BGP session, and going silent
	// would make it time out, either way dropping the routes. Nil keeps
	// none.
	Keep func(netip.Addr) bool
	// FailureHold is the longest a session stays silent after it failed
	// (Up to Down, not AdminDown) unless Release ends it sooner; zero
	// means DefaultFailureHold.
	FailureHold time.Duration
}

// DefaultFailureHold: see Options.FailureHold.
const DefaultFailureHold = time.Second

// Manager runs the node's BFD sessions: it listens on the BFD ports,
// sends each session's packets from its own socket and drives the state
// machines of package bfd. Create it with New, serve it with Run, set the
// sessions with Reconcile.
type Manager struct {
	log  logr.Logger
	opts Options

	mu       sync.Mutex
	sessions map[key]*session
	byDisc   map[uint32]*session
	running  bool

	wake    chan struct{}
	changes chan struct{}
	rx      chan received
}

// key identifies a session: the router's address and the kind of session.
type key struct {
	addr     netip.Addr
	multiHop bool
}

type session struct {
	peer  Peer
	fsm   *fsm.Session
	conn  *net.UDPConn
	dst   netip.AddrPort
	since time.Time
	// now is set when a packet must go out before the next periodic one.
	now bool
	// heldUntil: after a failure the session neither sends nor takes
	// packets until then, or until Release. The router's bfdd answers at
	// once, and its BGP opens the session the moment BFD is up again; the
	// hold gives the BGP side the time to start its session over first,
	// or that connection would be refused.
	heldUntil time.Time
}

// held reports whether s is held at now.
func (s *session) held(now time.Time) bool { return now.Before(s.heldUntil) }

type received struct {
	pkt      fsm.Packet
	src      netip.Addr
	ttl      int
	multiHop bool
	at       time.Time
}

// New returns a manager; it starts nothing.
func New(opts Options) *Manager {
	if opts.SingleHopPort == 0 {
		opts.SingleHopPort = PortSingleHop
	}
	if opts.MultiHopPort == 0 {
		opts.MultiHopPort = PortMultiHop
	}
	if opts.FailureHold == 0 {
		opts.FailureHold = DefaultFailureHold
	}
	return &Manager{
		log:      opts.Log,
		opts:     opts,
		sessions: map[key]*session{},
		byDisc:   map[uint32]*session{},
		wake:     make(chan struct{}, 1),
		changes:  make(chan struct{}, 1),
		rx:       make(chan received, 64),
	}
}

// Changes signals (coalesced) every change of a session's state.
func (m *Manager) Changes() <-chan struct{} { return m.changes }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Reconcile makes the sessions those of peers (addresses distinct per
// kind): new ones start Down, removed ones are closed, changed settings
// apply to the running session. It returns the errors of sessions it could
// not open (no source port); the others are set regardless.
func (m *Manager) Reconcile(peers []Peer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	wanted := map[key]Peer{}
	for _, p := range peers {
		p.Address = p.Address.Unmap()
		wanted[key{p.Address, p.MultiHop}] = p
	}
	for k, s := range m.sessions {
		if _, ok := wanted[k]; !ok {
			m.closeSession(k, s)
		}
	}
	var errs []error
	for k, p := range wanted {
		if s, ok := m.sessions[k]; ok {
			if s.peer.Config != p.Config {
				s.fsm.SetConfig(p.Config, now)
			}
			s.peer = p
			continue
		}
		conn, err := sourceSocket(p.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("BFD session with %s (%s): %w", p.Address, p.Name, err))
			continue
		}
		port := m.opts.SingleHopPort
		if p.MultiHop {
			port = m.opts.MultiHopPort
		}
		s := &session{peer: p, conn: conn, dst: netip.AddrPortFrom(p.Address, uint16(port)), since: now}
		s.fsm = fsm.NewSession(p.Config, m.newDiscriminator(), rand.Float64, now)
		m.sessions[k] = s
		m.byDisc[s.fsm.MyDiscriminator()] = s
		m.log.Info("BFD session added", "peer", p.Address.String(), "name", p.Name, "multiHop", p.MultiHop,
			"transmit", p.Config.DesiredMinTx.String(), "receive", p.Config.RequiredMinRx.String(), "multiplier", p.Config.DetectMult)
	}
	signal(m.wake)
	return errors.Join(errs...)
}

// Release ends the hold of the sessions with addr after a failure (see
// Options.FailureHold): they speak again at once.
func (m *Manager) Release(addr netip.Addr) {
	addr = addr.Unmap()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.sessions {
		if k.addr == addr && !s.heldUntil.IsZero() {
			s.heldUntil, s.now = time.Time{}, true
		}
	}
	signal(m.wake)
}

// closeSession tells the router the session is going (AdminDown), then
// closes it. m.mu is held.
func (m *Manager) closeSession(k key, s *session) {
	now := time.Now()
	s.fsm.Shutdown(now)
	m.send(s, now)
	_ = s.conn.Close()
	delete(m.sessions, k)
	delete(m.byDisc, s.fsm.MyDiscriminator())
	m.log.Info("BFD session removed", "peer", k.addr.String(), "name", s.peer.Name)
}

// newDiscriminator returns a non-zero discriminator no session uses.
// m.mu is held.
func (m *Manager) newDiscriminator() uint32 {
	for {
		d := rand.Uint32()
		if _, used := m.byDisc[d]; d != 0 && !used {
			return d
		}
	}
}

// States returns every session's state, sorted by peer name and address.
func (m *Manager) States() []SessionState {
	m.mu.Lock()
	out := make([]SessionState, 0, len(m.sessions))
	for k, s := range m.sessions {
		out = append(out, SessionState{Peer: s.peer.Name, Address: k.addr, State: s.fsm.State(), Diag: s.fsm.Diag(),
			RemoteState: s.fsm.RemoteState(), Since: s.since})
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionState) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return a.Address.Compare(b.Address)
	})
	return out
}

// Run drives the sessions until ctx ends; then every session is shut
// down (AdminDown sent) and closed, except those Options.Keep keeps: they
// go on, with the ports, until the process exits. The BFD ports are
// opened with the first session, so a node without BFD peers holds none
// (another BFD daemon on the host keeps them). A port that cannot be
// opened (taken, or IPv6 on a host without it) is logged and left out.
func (m *Manager) Run(ctx context.Context) error {
	// The ports outlive ctx when sessions are kept.
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	var ports portSet
	stopPorts := func() {
		end()
		for _, stop := range ports.stops {
			stop()
		}
	}
	m.loop(ctx, life, &ports)
	m.mu.Lock()
	kept := 0
	for k, s := range m.sessions {
		if m.opts.Keep != nil && m.opts.Keep(k.addr) {
			kept++
			continue
		}
		m.closeSession(k, s)
	}
	m.mu.Unlock()
	if kept == 0 {
		stopPorts()
		return nil
	}
	m.log.Info("BFD sessions of the BGP sessions left open kept up until the process exits", "sessions", kept)
	go m.loop(life, life, &ports)
	return nil
}

// portSet is the BFD ports a manager opened.
type portSet struct {
	opened bool
	stops  []func()
}

// loop sends, receives and expires until ctx ends, opening the ports
// (for as long as life lasts) with the first session.
func (m *Manager) loop(ctx, life context.Context, ports *portSet) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		// The ports open before the first session's first packet goes
		// out: the router answers its Poll at once, and an answer to a
		// closed port would be lost until the router's next packet.
		if len(m.sessions) > 0 && !ports.opened {
			ports.stops, ports.opened = m.openPorts(life), true
		}
		next := m.step(time.Now())
		m.mu.Unlock()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-ctx.Done():
			return
		case r := <-m.rx:
			m.mu.Lock()
			m.receive(r)
			m.mu.Unlock()
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// openPorts opens the BFD ports it can and returns their stops.
func (m *Manager) openPorts(ctx context.Context) []func() {
	var stops []func()
	for _, l := range []struct {
		network  string
		port     int
		multiHop bool
	}{
		{"udp4", m.opts.SingleHopPort, false}, {"udp6", m.opts.SingleHopPort, false},
		{"udp4", m.opts.MultiHopPort, true}, {"udp6", m.opts.MultiHopPort, true},
	} {
		stop, err := m.listen(ctx, l.network, l.port, l.multiHop)
		if err != nil {
			m.log.Error(err, "BFD port not opened: sessions on it stay down", "network", l.network, "port", l.port)
			continue
		}
		stops = append(stops, stop)
	}
	return stops
}

// step expires, transmits what is due and returns the next time anything
// is due (zero: nothing). m.mu is held.
func (m *Manager) step(now time.Time) time.Time {
	var next time.Time
	for k, s := range m.sessions {
		before := s.fsm.State()
		if s.fsm.Expire(now) {
			m.changed(k, s, before, now)
		}
		if s.held(now) {
			if next.IsZero() || s.heldUntil.Before(next) {
				next = s.heldUntil
			}
			continue
		}
		if !s.heldUntil.IsZero() {
			// The hold ended: speak at once.
			s.heldUntil, s.now = time.Time{}, true
		}
		if s.now || s.fsm.DueTx(now) {
			s.now = false
			m.send(s, now)
		}
		if e := s.fsm.NextEvent(); !e.IsZero() && (next.IsZero() || e.Before(next)) {
			next = e
		}
	}
	return next
}

// receive hands a packet to its session: by its Your Discriminator, or
// when that is 0 by its source address. Packets for no session, or with
// the wrong TTL, are dropped. m.mu is held.
func (m *Manager) receive(r received) {
	var s *session
	if d := r.pkt.YourDiscriminator; d != 0 {
		s = m.byDisc[d]
	} else {
		s = m.sessions[key{r.src, r.multiHop}]
	}
	if s == nil || s.peer.Address != r.src || s.peer.MultiHop != r.multiHop {
		return
	}
	// RFC 5881 section 5 (GTSM): single-hop packets must arrive with
	// TTL 255; RFC 5883: multi-hop ones at least the configured minimum.
	if (!r.multiHop && r.ttl != 255) || (r.multiHop && r.ttl < int(s.peer.MinimumTTL)) {
		return
	}
	if s.held(r.at) {
		return
	}
	before := s.fsm.State()
	if s.fsm.Receive(r.pkt, r.at) {
		s.now = true
	}
	if s.fsm.State() != before {
		m.changed(key{r.src, r.multiHop}, s, before, r.at)
	}
	signal(m.wake)
}

// changed records and reports a state change, and holds a session that
// failed. m.mu is held.
func (m *Manager) changed(k key, s *session, before fsm.State, now time.Time) {
	s.since = now
	st := s.fsm.State()
	if before == fsm.StateUp && st == fsm.StateDown && s.fsm.RemoteState() != fsm.StateAdminDown {
		s.heldUntil = now.Add(m.opts.FailureHold)
	}
	if st == fsm.StateUp || before == fsm.StateUp {
		m.log.Info("BFD session "+strings.ToLower(st.String()), "peer", k.addr.String(), "name", s.peer.Name,
			"from", before.String(), "diag", s.fsm.Diag().String(), "detection", s.fsm.DetectionTime().String())
	} else {
		m.log.V(1).Info("BFD session state", "peer", k.addr.String(), "name", s.peer.Name, "state", st.String(), "from", before.String())
	}
	signal(m.changes)
}

// send transmits the session's current packet. m.mu is held.
func (m *Manager) send(s *session, now time.Time) {
	p := s.fsm.Transmit(now)
	var buf [fsm.PacketLen]byte
	if _, err := s.conn.WriteToUDPAddrPort(p.Append(buf[:0]), s.dst); err != nil {
		m.log.V(1).Info("BFD packet not sent", "peer", s.peer.Address.String(), "error", err.Error())
	}
}

// listen opens one BFD port and reads it until ctx ends or stop is called.
func (m *Manager) listen(ctx context.Context, network string, port int, multiHop bool) (stop func(), err error) {
	lc := net.ListenConfig{}
	pc, err := lc.ListenPacket(ctx, network, fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	var read func(b []byte) (n, ttl int, src net.Addr, err error)
	if network == "udp4" {
		p := ipv4.NewPacketConn(conn)
		if err := p.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("ask for the TTL of packets: %w", err)
		}
		read = func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := p.ReadFrom(b)
			ttl := -1
			if cm != nil {
				ttl = cm.TTL
			}
			return n, ttl, src, err
		}
	} else {
		p := ipv6.NewPacketConn(conn)
		if err := p.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("ask for the hop limit of packets: %w", err)
		}
		read = func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := p.ReadFrom(b)
			ttl := -1
			if cm != nil {
				ttl = cm.HopLimit
			}
			return n, ttl, src, err
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, ttl, src, err := read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			ua, ok := src.(*net.UDPAddr)
			if !ok {
				continue
			}
			pkt, err := fsm.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			addr, _ := netip.AddrFromSlice(ua.IP)
			select {
			case m.rx <- received{pkt: pkt, src: addr.Unmap(), ttl: ttl, multiHop: multiHop, at: time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { _ = conn.Close(); <-done }, nil
}

// sourceSocket opens a session's socket: a source port from the RFC 5881
// range, TTL (hop limit) 255.
func sourceSocket(peer netip.Addr) (*net.UDPConn, error) {
	network, level, opt := "udp4", syscall.IPPROTO_IP, syscall.IP_TTL
	if peer.Is6() {
		network, level, opt = "udp6", syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), level, opt, 255) }); err != nil {
			return err
		}
		return serr
	}}
	var last error
	start := minSourcePort + rand.IntN(maxSourcePort-minSourcePort+1)
	for i := range 64 {
		port := minSourcePort + (start-minSourcePort+i*7919)%(maxSourcePort-minSourcePort+1)
		pc, err := lc.ListenPacket(context.Background(), network, fmt.Sprintf(":%d", port))
		if err == nil {
			return pc.(*net.UDPConn), nil
		}
		last = err
	}
	return nil, fmt.Errorf("no source port free in %d-%d: %w", minSourcePort, maxSourcePort, last)
}
