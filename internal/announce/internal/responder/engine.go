package responder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/metrics"
)

// ErrPermission is wrapped by the error Run returns when the kernel refuses
// to open a raw socket.
var ErrPermission = errors.New("opening raw sockets needs CAP_NET_RAW (run the speaker as root or grant it NET_RAW)")

// ErrStopped is returned by Reconcile once Run has returned.
var ErrStopped = errors.New("responder stopped")

// Protocol is what the engine needs from ARP or NDP.
type Protocol interface {
	// Name is the protocol's metrics label and logger name: "arp", "ndp".
	Name() string
	// Wants reports whether the protocol answers for addr (IPv4 unicast
	// for ARP, IPv6 unicast for NDP). Other addresses are dropped from the
	// desired state.
	Wants(addr netip.Addr) bool
	// Ready returns nil if a socket can usefully be opened on the
	// interface now, else why not.
	Ready(iface ifaces.Interface) error
	// Open opens the protocol's socket on the interface.
	Open(iface ifaces.Interface) (Conn, error)
}

// Conn is one protocol socket on one interface. The engine calls Join,
// Leave, Announce and the reply functions it passes back to Answer while
// holding the link's lock, so a Conn needs no locking of its own for them.
type Conn interface {
	// Serve reads until the socket fails or is closed and returns the
	// error. For every valid request it calls a.Answer with the target
	// address and a function that sends the answer.
	Serve(a Answerer) error
	// Forms is how many different gratuitous packets announce an address
	// (ARP: a request and a reply; NDP: one advertisement).
	Forms() int
	// Announce sends gratuitous packet form (0 <= form < Forms()) for addr.
	Announce(addr netip.Addr, form int) error
	// Join is called when addr starts being answered on the socket, Leave
	// when it stops (NDP joins the solicited-node group; ARP does nothing).
	Join(addr netip.Addr) error
	Leave(addr netip.Addr) error
	// Close closes the socket; a blocked Serve returns.
	Close() error
}

// Answerer is what a Conn's Serve reports requests to.
type Answerer interface {
	// Answer calls reply, under the link's lock, if target is answered on
	// the link, and counts the request and the response. It must be
	// called for requests only, never for the node's own packets.
	Answer(target netip.Addr, reply func() error)
	// Conflict reports a packet from another host that claims target:
	// probe when it asked whether target is free (an ARP probe, IPv6
	// duplicate address detection: its sender may not know from), else
	// it uses target as its own (sender of an ARP packet). It counts
	// only while target is answered on the link; see Options.OnConflict.
	Conflict(target netip.Addr, from net.HardwareAddr, probe bool)
}

// Conflict is another host claiming an address a link answers for.
type Conflict struct {
	IP netip.Addr
	// MAC is the other host's, nil when its packet does not say.
	MAC   net.HardwareAddr
	Iface string
	// Probe: the host asked whether the address is free (and was told
	// it is in use); otherwise it uses the address.
	Probe bool
}

// How a host that claims an address is reported (OnConflict). A probe at
// once. A host that uses the address when it is still seen conflictConfirm
// after its first packet: a handover shows the old owner and the new one
// both claiming it for well under a second. Sightings of one address, MAC
// and kind (probe or use) more than conflictRunGap apart are reported anew; at most
// maxConflicts of them are tracked per link, and an address's are dropped
// when the link stops answering for it.
const (
	conflictConfirm = 2 * time.Second
	conflictRunGap  = 10 * time.Minute
	maxConflicts    = 1024
)

// gateRetry is how often due announcements ask a closed Gate again.
const gateRetry = 50 * time.Millisecond

// Defaults for Options fields left zero.
const (
	DefaultGratuitous         = 3
	DefaultGratuitousInterval = 200 * time.Millisecond
	DefaultResyncInterval     = 10 * time.Second
	DefaultRetryMin           = 100 * time.Millisecond
	DefaultRetryMax           = 5 * time.Second
	DefaultChangeDelay        = 50 * time.Millisecond
)

// Options configure an Engine. Zero values take the defaults above.
type Options struct {
	Log     logr.Logger
	Metrics *metrics.L2 // nil: metrics go to a private registry
	// Gratuitous is how many times a newly taken address is announced.
	Gratuitous int
	// GratuitousInterval is the time between two announcements.
	GratuitousInterval time.Duration
	// ResyncInterval is how often open sockets are checked against the
	// interfaces (gone, re-created, down) when nothing else happens.
	ResyncInterval time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to open a
	// socket on an interface that is missing, not ready or failing.
	RetryMin, RetryMax time.Duration
	// Interfaces lists the node's interfaces; nil means ifaces.List, and
	// then a nil Changes means ifaces.Watch.
	Interfaces func() ([]ifaces.Interface, error)
	// Changes, if not nil, is called by Run for a channel that signals
	// interface changes; each signal resyncs (after ChangeDelay, so that
	// a burst of changes costs one resync).
	Changes func(ctx context.Context) (<-chan struct{}, error)
	// ChangeDelay is how long a change signal waits for more.
	ChangeDelay time.Duration
	// Gate, if not nil, is asked before every answer (announce false) and
	// every gratuitous announcement (announce true); while it says no,
	// requests go unanswered and due announcements wait (they are sent
	// once it says yes, if the address is still owned then). The speaker
	// closes it while its idea of what it owns may be stale: after the
	// process was stalled, or (announcements only) while cut off from
	// most of its peers.
	Gate func(announce bool) bool
	// OnConflict, if not nil, is told of another host claiming an
	// address the engine answers for (see Answerer.Conflict), once per
	// run of its packets. It is called from a socket's reader and must
	// not block.
	OnConflict func(Conflict)
}

// Config is what the ARP and NDP responders take from their users
// (arp.Options and ndp.Options are this type); the rest of Options is for
// tests.
type Config struct {
	Log     logr.Logger
	Metrics *metrics.L2 // nil: not exported
	// Gratuitous is how many rounds of announcements (ARP: a gratuitous
	// request and reply; NDP: an unsolicited advertisement) a newly
	// taken address gets; default 3.
	Gratuitous int
	// GratuitousInterval is the time between rounds; default 200ms.
	GratuitousInterval time.Duration
	// Gate and OnConflict: see Options.
	Gate       func(announce bool) bool
	OnConflict func(Conflict)
}

// NewFromConfig returns an Engine for proto configured by c; list, when
// not nil, replaces the interface list (tests).
func NewFromConfig(proto Protocol, c Config, list func() ([]ifaces.Interface, error)) *Engine {
	return New(proto, Options{
		Log:                c.Log,
		Metrics:            c.Metrics,
		Gratuitous:         c.Gratuitous,
		GratuitousInterval: c.GratuitousInterval,
		Gate:               c.Gate,
		OnConflict:         c.OnConflict,
		Interfaces:         list,
	})
}

// Engine answers for addresses on interfaces through a Protocol. See the
// package documentation for its invariants.
type Engine struct {
	proto Protocol
	opts  Options
	log   logr.Logger
	kick  chan struct{}
	wg    sync.WaitGroup

	mu        sync.Mutex
	state     state
	desired   map[string]addrSet
	links     map[string]*link
	retry     map[string]*retry
	forceNext bool // the next sync tries every missing link, ignoring backoff
	// interrupted holds, per interface whose socket failed or was closed
	// because the interface went down or away, its MAC and the addresses
	// it answered for then, less those Reconcile removed since: addresses
	// held all through the outage. A link reopened on the same MAC does
	// not announce them again: the neighbours' caches still name this
	// MAC, and a node that was cut off must not pull clients back from
	// the node that took over meanwhile (the election settles it).
	interrupted map[string]interruption
	watching    bool // interface changes are signalled (Options.Changes)
}

type state int

const (
	idle state = iota
	running
	stopped
)

type addrSet = map[netip.Addr]struct{}

type interruption struct {
	mac   net.HardwareAddr
	addrs addrSet
}

// interrupt records that l closes for a reason other than Reconcile
// (see Engine.interrupted). e.mu is held.
func (e *Engine) interrupt(l *link) {
	l.mu.Lock()
	addrs := maps.Clone(l.owned)
	l.mu.Unlock()
	e.interrupted[l.iface.Name] = interruption{mac: l.iface.MAC, addrs: addrs}
}

// retry is the backoff state of an interface that has no link.
type retry struct {
	attempts  int
	notBefore time.Time
	lastErr   string // last reason logged, so only changes are logged
}

// New returns an Engine for proto. It starts nothing.
func New(proto Protocol, opts Options) *Engine {
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewL2(prometheus.NewRegistry())
	}
	if opts.Gratuitous <= 0 {
		opts.Gratuitous = DefaultGratuitous
	}
	if opts.GratuitousInterval <= 0 {
		opts.GratuitousInterval = DefaultGratuitousInterval
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryMin)
	}
	if opts.Interfaces == nil {
		opts.Interfaces = ifaces.List
		if opts.Changes == nil {
			opts.Changes = ifaces.Watch
		}
	}
	if opts.ChangeDelay <= 0 {
		opts.ChangeDelay = DefaultChangeDelay
	}
	return &Engine{
		proto:   proto,
		opts:    opts,
		log:     opts.Log.WithName(proto.Name()),
		kick:    make(chan struct{}, 1),
		desired: map[string]addrSet{},
		links:   map[string]*link{},
		retry:   map[string]*retry{},

		interrupted: map[string]interruption{},
	}
}

// Reconcile sets the whole desired state: interface name -> addresses
// answered for on it. Addresses the protocol does not want are ignored.
// Addresses new on an open link are announced; removed ones are no longer
// answered or announced when Reconcile returns. Interfaces without a link
// are opened by Run, at once.
func (e *Engine) Reconcile(desired map[string][]netip.Addr) error {
	want := map[string]addrSet{}
	for name, addrs := range desired {
		for _, a := range addrs {
			a = a.Unmap().WithZone("")
			if !e.proto.Wants(a) {
				continue
			}
			if want[name] == nil {
				want[name] = addrSet{}
			}
			want[name][a] = struct{}{}
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == stopped {
		return ErrStopped
	}
	e.desired = want
	now := time.Now()
	for name, l := range e.links {
		if len(want[name]) == 0 {
			e.closeLink(l)
			continue
		}
		l.setOwned(want[name], now)
	}
	for name := range e.retry {
		if len(want[name]) == 0 {
			delete(e.retry, name)
		}
	}
	// An address lost during an outage is no longer held through it.
	for name, in := range e.interrupted {
		maps.DeleteFunc(in.addrs, func(a netip.Addr, _ struct{}) bool {
			_, ok := want[name][a]
			return !ok
		})
	}
	e.updateGauge()
	// Resync (listing the interfaces) only when it can help: for an
	// interface never tried yet, or, when changes are not watched, because
	// the caller may be telling about one.
	needSync := !e.watching
	for name := range want {
		if e.links[name] == nil && e.retry[name] == nil {
			needSync = true
		}
	}
	if needSync {
		e.forceNext = true
		e.poke()
	}
	return nil
}

// Run opens, watches and reopens the links until ctx ends, then closes
// them and returns nil. It returns early with an error wrapping
// ErrPermission when a socket cannot be opened for lack of privilege.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.state != idle {
		e.mu.Unlock()
		return errors.New("responder: Run called more than once")
	}
	e.state = running
	e.forceNext = true
	e.mu.Unlock()

	var changes <-chan struct{}
	if e.opts.Changes != nil {
		var err error
		if changes, err = e.opts.Changes(ctx); err != nil {
			e.log.Error(err, "cannot watch interfaces; relying on Reconcile and periodic resyncs")
		}
	}
	e.setWatching(changes != nil)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var changed <-chan time.Time // a change waits ChangeDelay for more
	syncNow := true
	for {
		if syncNow {
			next, err := e.sync()
			if err != nil {
				e.shutdown()
				return err
			}
			timer.Reset(time.Until(next))
		}
		syncNow = true
		select {
		case <-ctx.Done():
			e.shutdown()
			return nil
		case <-e.kick:
		case <-timer.C:
		case _, ok := <-changes:
			syncNow = false
			if !ok {
				changes = nil
				e.setWatching(false)
				if ctx.Err() == nil {
					e.log.Info("interface watch ended; relying on Reconcile and periodic resyncs")
				}
			} else if changed == nil {
				changed = time.After(e.opts.ChangeDelay)
			}
		case <-changed:
			changed = nil
			e.mu.Lock()
			e.forceNext = true
			e.mu.Unlock()
		}
	}
}

func (e *Engine) setWatching(on bool) {
	e.mu.Lock()
	e.watching = on
	e.mu.Unlock()
}

// poke wakes Run without blocking.
func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Changer is implemented by a Protocol whose socket depends on more of
// the interface than its index and MAC (NDP: the link-local address it
// sends from); Changed reports whether cur differs from old there.
type Changer interface {
	Changed(old, cur ifaces.Interface) bool
}

// changed asks the protocol, when it is a Changer.
func (e *Engine) changed(old, cur ifaces.Interface) bool {
	c, ok := e.proto.(Changer)
	return ok && c.Changed(old, cur)
}

// sync brings the links in line with the desired state and the interfaces
// and returns when it wants to run again.
func (e *Engine) sync() (time.Time, error) {
	list, listErr := e.opts.Interfaces()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	force := e.forceNext
	e.forceNext = false
	next := now.Add(e.opts.ResyncInterval)
	if listErr != nil {
		e.log.Error(listErr, "listing interfaces failed; retrying")
		return now.Add(e.opts.RetryMin), nil
	}
	byName := make(map[string]ifaces.Interface, len(list))
	for _, i := range list {
		byName[i.Name] = i
	}

	// Links whose interface went away, was re-created or is no longer ready.
	for name, l := range e.links {
		cur, ok := byName[name]
		if ok && cur.Index == l.iface.Index && bytes.Equal(cur.MAC, l.iface.MAC) && !e.changed(l.iface, cur) &&
			e.proto.Ready(cur) == nil {
			continue
		}
		e.log.Info("interface gone, re-created, readdressed (link-local) or not ready; closing its socket", "iface", name)
		e.interrupt(l)
		e.closeLink(l)
	}

	for name, addrs := range e.desired {
		if e.links[name] != nil {
			continue
		}
		r := e.retry[name]
		if r == nil {
			r = &retry{}
			e.retry[name] = r
		}
		if !force && now.Before(r.notBefore) {
			next = earliest(next, r.notBefore)
			continue
		}
		cur, ok := byName[name]
		var err error
		if !ok {
			err = errors.New("interface not found")
		} else if err = e.proto.Ready(cur); err == nil {
			var c Conn
			if c, err = e.proto.Open(cur); err == nil {
				e.openLink(cur, c, addrs, now)
				if r.lastErr != "" {
					e.log.Info("socket open again", "iface", name)
				}
				r.lastErr = ""
				continue
			}
			if errors.Is(err, os.ErrPermission) {
				return now, fmt.Errorf("%w: %s socket on %s: %w", ErrPermission, e.proto.Name(), name, err)
			}
		}
		r.attempts++
		r.notBefore = now.Add(e.backoff(r.attempts))
		next = earliest(next, r.notBefore)
		if msg := err.Error(); msg != r.lastErr {
			r.lastErr = msg
			e.log.Info("cannot answer on interface yet; will retry", "iface", name, "reason", msg)
		}
	}
	e.updateGauge()
	return next, nil
}

// backoff is the wait before attempt n+1 (n >= 1).
func (e *Engine) backoff(n int) time.Duration {
	d := e.opts.RetryMin
	for i := 1; i < n && d < e.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, e.opts.RetryMax)
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// openLink starts serving and announcing on a new socket. e.mu is held.
func (e *Engine) openLink(iface ifaces.Interface, c Conn, addrs addrSet, now time.Time) {
	name := e.proto.Name()
	l := &link{
		log:        e.log.WithValues("iface", iface.Name),
		iface:      iface,
		conn:       c,
		opened:     now,
		interval:   e.opts.GratuitousInterval,
		rounds:     e.opts.Gratuitous,
		owned:      addrSet{},
		due:        map[netip.Addr]*due{},
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		requests:   e.opts.Metrics.RequestsReceived.WithLabelValues(name, iface.Name),
		responses:  e.opts.Metrics.ResponsesSent.WithLabelValues(name, iface.Name),
		gratuitous: e.opts.Metrics.GratuitousSent.WithLabelValues(name, iface.Name),
		gate:       e.opts.Gate,
		onConflict: e.opts.OnConflict,
	}
	l.setOwned(addrs, now)
	if in, ok := e.interrupted[iface.Name]; ok {
		delete(e.interrupted, iface.Name)
		if bytes.Equal(in.mac, iface.MAC) {
			l.mu.Lock()
			for a := range in.addrs {
				delete(l.due, a)
			}
			l.mu.Unlock()
		}
	}
	e.links[iface.Name] = l
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		err := c.Serve(l)
		select {
		case <-l.done:
		default:
			e.linkFailed(l, err)
		}
	}()
	go func() {
		defer e.wg.Done()
		l.announceLoop()
	}()
	l.log.V(1).Info("socket open")
}

// closeLink stops answering on a link and closes its socket. e.mu is held.
func (e *Engine) closeLink(l *link) {
	l.close()
	if e.links[l.iface.Name] == l {
		delete(e.links, l.iface.Name)
	}
}

// linkFailed handles a socket that failed on its own: the link is dropped
// and reopened after a backoff (at once if it had been up for a while).
func (e *Engine) linkFailed(l *link, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.links[l.iface.Name] != l {
		return
	}
	e.interrupt(l)
	e.closeLink(l)
	e.updateGauge()
	r := e.retry[l.iface.Name]
	if r == nil {
		r = &retry{}
		e.retry[l.iface.Name] = r
	}
	now := time.Now()
	if now.Sub(l.opened) > e.opts.RetryMax {
		r.attempts = 0
	}
	r.attempts++
	r.notBefore = now.Add(e.backoff(r.attempts))
	r.lastErr = err.Error()
	e.log.Info("socket failed; reopening", "iface", l.iface.Name, "reason", r.lastErr)
	e.poke()
}

// shutdown closes every link and waits for their goroutines.
func (e *Engine) shutdown() {
	e.mu.Lock()
	e.state = stopped
	for _, l := range e.links {
		e.closeLink(l)
	}
	e.updateGauge()
	e.mu.Unlock()
	e.wg.Wait()
}

// updateGauge sets AnnouncedIPs to the number of distinct addresses
// answered for on open links. e.mu is held (owned sets change only under
// it).
func (e *Engine) updateGauge() {
	seen := addrSet{}
	for _, l := range e.links {
		for a := range l.owned {
			seen[a] = struct{}{}
		}
	}
	e.opts.Metrics.AnnouncedIPs.WithLabelValues(e.proto.Name()).Set(float64(len(seen)))
}

// link is an open socket on one interface and what it answers for.
type link struct {
	log      logr.Logger
	iface    ifaces.Interface
	conn     Conn
	opened   time.Time
	interval time.Duration
	rounds   int

	requests, responses, gratuitous prometheus.Counter
	gate                            func(announce bool) bool

	// mu guards owned and due, and is held around every write to conn.
	// Changes to owned also hold Engine.mu.
	mu    sync.Mutex
	owned addrSet
	due   map[netip.Addr]*due

	// conflicts are the runs of other hosts' claims of owned
	// addresses; mu guards them.
	conflicts  map[conflictKey]*conflictRun
	onConflict func(Conflict)

	wake      chan struct{} // new announcements are due
	done      chan struct{} // closed when the link is closed
	closeOnce sync.Once
}

// due is an address's pending announcements.
type due struct {
	left int
	at   time.Time
}

var _ Answerer = (*link)(nil)

// setOwned makes want the link's owned set. Addresses added are announced
// from now. Engine.mu is held.
func (l *link) setOwned(want addrSet, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for a := range l.owned {
		if _, ok := want[a]; ok {
			continue
		}
		delete(l.owned, a)
		delete(l.due, a)
		if err := l.conn.Leave(a); err != nil {
			l.log.Error(err, "leaving multicast group failed", "ip", a)
		}
	}
	// Claims of addresses no longer answered go with them (one walk of
	// the table, not one per address: a handover removes thousands).
	for k := range l.conflicts {
		if _, ok := want[k.ip]; !ok {
			delete(l.conflicts, k)
		}
	}
	added := false
	for a := range want {
		if _, ok := l.owned[a]; ok {
			continue
		}
		if err := l.conn.Join(a); err != nil {
			l.log.Error(err, "joining multicast group failed; answering unicast requests only", "ip", a)
		}
		l.owned[a] = struct{}{}
		l.due[a] = &due{left: l.rounds, at: now}
		added = true
	}
	if added {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// close stops answering and announcing, then closes the socket (which
// drops its multicast memberships). Engine.mu is held.
func (l *link) close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		clear(l.owned)
		clear(l.due)
		close(l.done)
		l.mu.Unlock()
		if err := l.conn.Close(); err != nil {
			l.log.V(1).Info("closing socket failed", "reason", err.Error())
		}
	})
}

// Answer implements Answerer.
func (l *link) Answer(target netip.Addr, reply func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.owned[target]; !ok {
		return
	}
	l.requests.Inc()
	if l.gate != nil && !l.gate(false) {
		return
	}
	if err := reply(); err != nil {
		l.log.V(1).Info("sending answer failed", "ip", target, "reason", err.Error())
		return
	}
	l.responses.Inc()
}

// conflictKey is an address, the MAC (as a string) claiming it and how
// (a probe, or a use).
type conflictKey struct {
	ip    netip.Addr
	mac   string
	probe bool
}

// conflictRun is a run of sightings of one conflictKey.
type conflictRun struct {
	first, last time.Time
	reported    bool
}

// Conflict implements Answerer.
func (l *link) Conflict(target netip.Addr, from net.HardwareAddr, probe bool) {
	if !l.sighting(target, from, probe, time.Now()) {
		return
	}
	c := Conflict{IP: target, MAC: from, Iface: l.iface.Name, Probe: probe}
	mac := "unknown"
	if from != nil {
		mac = from.String()
	}
	l.log.Info("another host claims an address this node answers for", "ip", target, "mac", mac, "probe", probe)
	if l.onConflict != nil {
		l.onConflict(c)
	}
}

// sighting records a claim of target by from and reports whether it is
// to be reported now.
func (l *link) sighting(target netip.Addr, from net.HardwareAddr, probe bool, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.owned[target]; !ok {
		return false
	}
	k := conflictKey{ip: target, mac: string(from), probe: probe}
	r := l.conflicts[k]
	if r == nil || now.Sub(r.last) > conflictRunGap {
		if r == nil && len(l.conflicts) >= maxConflicts {
			return false
		}
		if l.conflicts == nil {
			l.conflicts = map[conflictKey]*conflictRun{}
		}
		r = &conflictRun{first: now}
		l.conflicts[k] = r
	}
	r.last = now
	if r.reported || !probe && now.Sub(r.first) < conflictConfirm {
		return false
	}
	r.reported = true
	return true
}

// announceLoop sends due announcements until the link closes.
func (l *link) announceLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next, ok := l.announceDue(time.Now()); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		select {
		case <-l.done:
			return
		case <-l.wake:
		case <-timer.C:
		}
	}
}

// closed reports whether the link was closed.
func (l *link) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// announceChunk is how many addresses a burst announces between two
// takes of the link's lock, so that answers are not held up by a large
// takeover.
const announceChunk = 64

// announceDue sends the announcements due at now and returns when the next
// ones are due (false: none pending). A takeover of many addresses is sent
// form by form: every address gets its first packet before any gets its
// second, so the last address is not kept waiting by the others' repeats.
func (l *link) announceDue(now time.Time) (time.Time, bool) {
	l.mu.Lock()
	if l.closed() {
		l.mu.Unlock()
		return time.Time{}, false
	}
	if len(l.due) > 0 && l.gate != nil && !l.gate(true) {
		// Held: look again in a moment.
		l.mu.Unlock()
		return now.Add(gateRetry), true
	}
	var batch []netip.Addr
	for a, d := range l.due {
		if !d.at.After(now) {
			batch = append(batch, a)
		}
	}
	l.mu.Unlock()

	var (
		sent, failed int
		firstErr     error
	)
	for form := range l.conn.Forms() {
		for start := 0; start < len(batch); start += announceChunk {
			l.mu.Lock()
			if l.closed() {
				l.mu.Unlock()
				return time.Time{}, false
			}
			for _, a := range batch[start:min(start+announceChunk, len(batch))] {
				// Skip an address given up (or given up and taken again)
				// since the burst began.
				if d, ok := l.due[a]; !ok || d.at.After(now) {
					continue
				}
				if err := l.conn.Announce(a, form); err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				sent++
			}
			l.mu.Unlock()
		}
	}
	l.gratuitous.Add(float64(sent))

	l.mu.Lock()
	defer l.mu.Unlock()
	end := time.Now()
	for _, a := range batch {
		d, ok := l.due[a]
		if !ok || d.at.After(now) {
			continue
		}
		d.left--
		if d.left <= 0 {
			delete(l.due, a)
			continue
		}
		d.at = end.Add(l.interval)
	}
	var (
		next    time.Time
		pending bool
	)
	for _, d := range l.due {
		if !pending || d.at.Before(next) {
			next, pending = d.at, true
		}
	}
	if failed > 0 {
		l.log.Info("sending gratuitous announcements failed", "failed", failed, "reason", firstErr.Error())
	}
	if len(batch) >= announceChunk {
		l.log.Info("announced addresses", "addresses", len(batch), "packets", sent, "took", end.Sub(now).String())
	}
	return next, pending
}
