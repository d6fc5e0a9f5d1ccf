package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"
)

// ErrStopped is returned by Reconcile once Run has shut the speaker down.
var ErrStopped = errors.New("bgp speaker stopped")

// Options configure a Speaker.
type Options struct {
	Log logr.Logger
	// ListenPort is the TCP port on which the speaker also accepts
	// sessions, so a router that retries sooner than GoBGP (1-2s after a
	// peer is added) brings the session up sooner. 0 does not listen:
	// sessions are opened from this side only. A port that cannot be
	// bound is logged and not listened on.
	ListenPort int
	// StopTimeout bounds the shutdown when ctx ends (default 3s).
	StopTimeout time.Duration
	// RefuseRetry is how long a dynamic external peer whose router
	// turned out to be of myASN stays shut down before it is tried
	// again (default 30s).
	RefuseRetry time.Duration
	// CloseAll is asked at the shutdown: true closes the sessions of
	// peers with graceful restart too (the node is leaving). Nil or
	// false leaves them open; see Run.
	CloseAll func() bool
}

// Speaker is the node's BGP speaker: one GoBGP server. Create it with New,
// serve it with Run, drive it with Reconcile.
type Speaker struct {
	log  logr.Logger
	opts Options
	srv  *server.BgpServer

	serving  chan struct{} // closed once Run serves
	done     chan struct{} // closed once Run has stopped the server
	stopping atomic.Bool
	changes  chan struct{}

	// mu serialises Reconcile and the shutdown; it guards what was
	// applied to GoBGP.
	mu        sync.Mutex
	started   bool
	routerID  netip.Addr
	neighbors map[netip.Addr]neighbor
	tags      tagTable
	policy    *api.SetPoliciesRequest // in force; nil before the first
	paths     map[netip.Prefix]installedPath

	// stateMu guards what Sessions reports.
	stateMu sync.Mutex
	records map[netip.Addr]*peerRecord
	reasons map[netip.Addr]string // the last state-change reason GoBGP logged
	active  atomic.Bool           // the GoBGP server is started

	// grPeers holds the addresses of the peers configured with graceful
	// restart, for LeavesOpen (read without s.mu, which the shutdown
	// holds).
	grPeers atomic.Pointer[map[netip.Addr]bool]
}

type installedPath struct {
	spec pathSpec
	tags []uint32
}

type peerRecord struct {
	name      string
	state     State
	since     time.Time
	lastError string
	// refuseASN is a router AS the session must not have (0: none).
	refuseASN uint32
	// refused says why this side last shut the session down (a refused
	// dynamic AS, a reset after BFD went down), until it is up again.
	refused string
	// disabled is set while a refused session waits to be tried again.
	disabled bool
}

// New returns a speaker; it starts nothing.
func New(opts Options) *Speaker {
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 3 * time.Second
	}
	if opts.RefuseRetry == 0 {
		opts.RefuseRetry = 30 * time.Second
	}
	s := &Speaker{
		log:       opts.Log,
		opts:      opts,
		serving:   make(chan struct{}),
		done:      make(chan struct{}),
		changes:   make(chan struct{}, 1),
		neighbors: map[netip.Addr]neighbor{},
		paths:     map[netip.Prefix]installedPath{},
		records:   map[netip.Addr]*peerRecord{},
		reasons:   map[netip.Addr]string{},
	}
	s.srv = server.NewBgpServer(server.LoggerOption(&logBridge{log: opts.Log.WithName("gobgp"), onStateChange: s.noteReason}))
	return s
}

// Changes signals (coalesced) every change of a session's state.
func (s *Speaker) Changes() <-chan struct{} { return s.changes }

func (s *Speaker) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// Run serves the GoBGP server until ctx ends, then closes the sessions
// with a Cease NOTIFICATION, within StopTimeout, so that the routers drop
// this node's routes at once. The sessions of peers with graceful restart
// are the exception (unless Options.CloseAll says the node is leaving):
// they are left open, and the kernel closes their connections when the
// process exits, without a NOTIFICATION, which tells a router with
// graceful restart to keep this node's routes until the speaker is back
// (RFC 4724), as for a crash; a NOTIFICATION would make it drop them.
// A rolling update of the speakers then moves no traffic.
func (s *Speaker) Run(ctx context.Context) error {
	// GoBGP's server loop cannot be stopped; it idles once stopped.
	go s.srv.Serve()
	// The shutdown waits for sessions to go down: the states are watched
	// until it is over.
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	if err := s.srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.onEvent); err != nil {
		return fmt.Errorf("watch BGP peer events: %w", err)
	}
	close(s.serving)
	<-ctx.Done()
	s.shutdown()
	return nil
}

// shutdown closes every session with a NOTIFICATION and stops the
// server. An ongoing Reconcile gives up at its next step.
func (s *Speaker) shutdown() {
	s.stopping.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		t0 := time.Now()
		var open []netip.Addr
		for addr := range s.neighbors {
			if s.LeavesOpen(addr) {
				open = append(open, addr)
			}
		}
		closing := len(s.neighbors) - len(open)
		if len(open) == 0 {
			if err := s.stopServer(); err != nil {
				s.log.Error(err, "stopping BGP")
			} else {
				s.log.Info("BGP sessions closed", "peers", closing, "took", time.Since(t0).String())
			}
			s.started = false
		} else if err := s.closeAllBut(open); err != nil {
			s.log.Error(err, "closing the BGP sessions")
		} else {
			slices.SortFunc(open, netip.Addr.Compare)
			s.log.Info("BGP sessions closed but those with graceful restart, left to close with the process",
				"peers", closing, "left open", fmt.Sprint(open), "took", time.Since(t0).String())
		}
	}
	s.stateMu.Lock()
	for _, r := range s.records {
		r.state, r.since = StateIdle, time.Now()
	}
	s.stateMu.Unlock()
	close(s.done)
	s.notify()
}

// closeAllBut shuts down every peer's session but those in open (GoBGP
// sends each a Cease NOTIFICATION, administrative shutdown) and waits
// for them to end, within StopTimeout; the server keeps serving the
// others. s.mu is held.
func (s *Speaker) closeAllBut(open []netip.Addr) error {
	var errs []error
	var closing []*peerRecord
	for addr := range s.neighbors {
		if slices.Contains(open, addr) {
			continue
		}
		if err := s.srv.DisablePeer(context.Background(), &api.DisablePeerRequest{Address: addr.String(),
			Communication: "speaker shutting down"}); err != nil {
			errs = append(errs, fmt.Errorf("shut down peer %s: %w", addr, err))
			continue
		}
		s.stateMu.Lock()
		if rec := s.records[addr]; rec != nil {
			closing = append(closing, rec)
		}
		s.stateMu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
	defer cancel()
	for _, rec := range closing {
		s.waitDown(ctx, rec, s.opts.StopTimeout)
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("sessions not closed within %s", s.opts.StopTimeout))
	}
	return errors.Join(errs...)
}

// LeavesOpen reports whether the shutdown leaves the session with addr
// open for the process's exit to close: a peer configured with graceful
// restart, unless Options.CloseAll says otherwise. It takes no lock the
// shutdown holds.
func (s *Speaker) LeavesOpen(addr netip.Addr) bool {
	gr := s.grPeers.Load()
	if gr == nil || !(*gr)[addr.Unmap()] {
		return false
	}
	return s.opts.CloseAll == nil || !s.opts.CloseAll()
}

// stopServer deletes every peer (GoBGP sends each a Cease NOTIFICATION
// and waits for its session to end) and clears the server, within
// StopTimeout.
func (s *Speaker) stopServer() error {
	s.active.Store(false)
	stopped := make(chan struct{})
	go func() {
		_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.opts.StopTimeout):
		return fmt.Errorf("GoBGP did not stop within %s", s.opts.StopTimeout)
	}
	s.neighbors = map[netip.Addr]neighbor{}
	s.paths = map[netip.Prefix]installedPath{}
	s.tags = tagTable{}
	s.policy = nil
	return nil
}

// Reconcile makes the speaker's sessions and routes equal d. Sessions
// whose settings did not change are not touched. It returns the problems
// it met (a peer it could not configure does not stop the others), or
// ErrStopped after Run ended.
func (s *Speaker) Reconcile(ctx context.Context, d Desired) error {
	select {
	case <-s.serving:
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return ErrStopped
	}

	var errs []error
	wanted := map[netip.Addr]wantedPeer{}
	var asn uint32 // the first valid peer's
	for _, p := range d.Peers {
		n := neighborOf(p)
		if err := n.check(); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", p.Name, err))
			continue
		}
		if other, dup := wanted[n.addr]; dup {
			err := fmt.Errorf("peer %s: address %s is already peer %s's", p.Name, n.addr, other.name)
			errs = append(errs, err)
			continue
		}
		wanted[n.addr] = wantedPeer{name: p.Name, n: n, routes: p.Routes}
		if asn == 0 {
			asn = n.myASN
		}
	}

	// Without peers nothing needs a router ID: a running server only
	// removes its peers.
	if len(wanted) > 0 {
		if err := s.ensureStarted(ctx, d.RouterID, asn); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	if !s.started {
		s.publish(wanted)
		return errors.Join(errs...)
	}

	// Classes and their tags, before anything uses them.
	want := map[class]bool{}
	prefixes := map[netip.Prefix][]class{}
	for addr, w := range wanted {
		for _, r := range w.routes {
			c := classOf(addr, r)
			want[c] = true
			prefixes[r.Prefix.Masked()] = append(prefixes[r.Prefix.Masked()], c)
		}
	}
	if err := s.tags.assign(want); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := s.applyPolicy(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}

	errs = append(errs, s.syncNeighbors(ctx, wanted)...)
	s.publish(wanted)
	errs = append(errs, s.syncPaths(ctx, prefixes)...)

	// Statements no longer used by any path go last.
	inUse := map[uint32]bool{}
	for _, ip := range s.paths {
		for _, t := range ip.tags {
			inUse[t] = true
		}
	}
	keep := map[class]bool{}
	for c, tag := range s.tags.byClass {
		if want[c] || inUse[tag] {
			keep[c] = true
		}
	}
	s.tags.keep(keep)
	if err := s.applyPolicy(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type wantedPeer struct {
	name   string
	n      neighbor
	routes []Route
}

// ensureStarted starts the GoBGP server with routerID (restarting it,
// and so every session, when the router ID changed) and installs the
// policy assignments: received routes are rejected, routes are exported
// only through the statements of the export policy. A running server
// keeps its router ID when routerID is none (the node's addresses are
// gone with its Node object), so that its routes can still be withdrawn.
func (s *Speaker) ensureStarted(ctx context.Context, routerID netip.Addr, asn uint32) error {
	routerID = routerID.Unmap()
	if !routerID.Is4() || routerID.IsUnspecified() {
		if s.started {
			return nil
		}
		return fmt.Errorf("router ID %v is not a non-zero IPv4 address", routerID)
	}
	if s.started && routerID == s.routerID {
		return nil
	}
	if s.started {
		s.log.Info("router ID changed: restarting every BGP session", "from", s.routerID.String(), "to", routerID.String())
		if err := s.stopServer(); err != nil {
			return err
		}
		s.started = false
	}
	// GoBGP's global AS only serves as the default local AS, and every
	// peer sets its own; it is the first peer's (any, without peers).
	if asn == 0 {
		asn = 64512
	}
	port := int32(-1) // GoBGP: do not listen
	if s.opts.ListenPort > 0 {
		port = int32(s.opts.ListenPort)
	}
	global := &api.Global{Asn: asn, RouterId: routerID.String(), ListenPort: port}
	err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: global})
	if err != nil && port > 0 {
		// GoBGP keeps the listeners it opened before the one that failed
		// (IPv4's, when IPv6's cannot be opened: a host booted without
		// IPv6), and never serves them: close them before trying again,
		// on IPv4 alone, then without listening.
		_ = s.srv.StopBgp(ctx, &api.StopBgpRequest{})
		first := err
		global.ListenAddresses = []string{"0.0.0.0"}
		if err = s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err == nil {
			s.log.Info("cannot listen for BGP sessions on IPv6; listening on IPv4 only", "port", port, "error", first.Error())
		} else {
			_ = s.srv.StopBgp(ctx, &api.StopBgpRequest{})
			s.log.Info("cannot listen for BGP sessions; opening them from this side only", "port", port, "error", err.Error())
			global.ListenAddresses, global.ListenPort = nil, -1
			err = s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: global})
		}
	}
	if err != nil {
		return fmt.Errorf("start GoBGP: %w", err)
	}
	s.policy = nil
	if err := s.applyPolicy(ctx); err != nil {
		return err
	}
	for _, a := range []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_REJECT,
			Policies: []*api.Policy{{Name: importPolicy}}},
		{Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT,
			Policies: []*api.Policy{{Name: exportPolicy}}},
	} {
		if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("assign the %s policy: %w", strings.ToLower(a.Direction.String()), err)
		}
	}
	s.started, s.routerID = true, routerID
	s.active.Store(true)
	s.log.Info("BGP started", "routerID", routerID.String(), "listenPort", global.ListenPort)
	return nil
}

// applyPolicy installs the policy for the current tags unless it is in
// force already.
func (s *Speaker) applyPolicy(ctx context.Context) error {
	req := s.tags.policyRequest()
	if s.policy != nil && proto.Equal(req, s.policy) {
		return nil
	}
	if err := s.srv.SetPolicies(ctx, req); err != nil {
		return fmt.Errorf("set the export policy: %w", err)
	}
	s.policy = req
	return nil
}

// syncNeighbors deletes the peers no longer wanted or whose settings
// changed, then adds the missing ones.
func (s *Speaker) syncNeighbors(ctx context.Context, wanted map[netip.Addr]wantedPeer) []error {
	defer s.noteGR()
	var errs []error
	for _, addr := range sortedKeys(s.neighbors) {
		if w, ok := wanted[addr]; ok && w.n == s.neighbors[addr] {
			continue
		}
		if s.stopping.Load() {
			return append(errs, ErrStopped)
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			errs = append(errs, fmt.Errorf("delete peer %s: %w", addr, err))
			continue
		}
		delete(s.neighbors, addr)
		s.log.Info("BGP peer removed", "peer", addr.String())
	}
	for _, addr := range sortedKeys(wanted) {
		w := wanted[addr]
		if _, ok := s.neighbors[addr]; ok {
			continue
		}
		if s.stopping.Load() {
			return append(errs, ErrStopped)
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: w.n.apiPeer()}); err != nil {
			err = fmt.Errorf("add peer %s (%s): %w", w.name, addr, err)
			errs = append(errs, err)
			s.setRecordError(addr, w.name, err.Error())
			continue
		}
		s.neighbors[addr] = w.n
		s.stateMu.Lock()
		s.records[addr] = &peerRecord{name: w.name, state: StateIdle, since: time.Now(), refuseASN: w.n.refusedASN()}
		s.stateMu.Unlock()
		s.log.Info("BGP peer added", "peer", addr.String(), "name", w.name, "myASN", w.n.myASN, "peerASN", w.n.peerASN, "dynamicASN", w.n.dynamic)
	}
	return errs
}

// noteGR records which configured peers have graceful restart. s.mu is
// held.
func (s *Speaker) noteGR() {
	gr := map[netip.Addr]bool{}
	for addr, n := range s.neighbors {
		if n.gr {
			gr[addr] = true
		}
	}
	s.grPeers.Store(&gr)
}

// syncPaths withdraws the prefixes no longer wanted and adds (or
// replaces) those whose classes changed.
func (s *Speaker) syncPaths(ctx context.Context, prefixes map[netip.Prefix][]class) []error {
	var errs []error
	for _, prefix := range sortedPrefixes(s.paths) {
		if _, ok := prefixes[prefix]; ok {
			continue
		}
		if s.stopping.Load() {
			return append(errs, ErrStopped)
		}
		ip := s.paths[prefix]
		p, err := ip.spec.apiPath(prefix, ip.tags, true)
		if err == nil {
			err = s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", prefix, err))
			continue
		}
		delete(s.paths, prefix)
	}
	for _, prefix := range sortedPrefixes(prefixes) {
		spec, tags := specOf(prefix, prefixes[prefix], s.tags.byClass)
		if cur, ok := s.paths[prefix]; ok && cur.spec == spec {
			continue
		}
		if s.stopping.Load() {
			return append(errs, ErrStopped)
		}
		p, err := spec.apiPath(prefix, tags, false)
		if err == nil {
			_, err = s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announce %s: %w", prefix, err))
			continue
		}
		s.paths[prefix] = installedPath{spec: spec, tags: tags}
	}
	return errs
}

// publish makes the records match the wanted peers: names follow the
// desired state, records of peers no longer wanted go.
func (s *Speaker) publish(wanted map[netip.Addr]wantedPeer) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	for addr, r := range s.records {
		w, ok := wanted[addr]
		if !ok {
			delete(s.records, addr)
			continue
		}
		r.name = w.name
	}
	for addr, w := range wanted {
		if _, ok := s.records[addr]; !ok {
			s.records[addr] = &peerRecord{name: w.name, state: StateIdle, since: time.Now()}
		}
	}
}

func (s *Speaker) setRecordError(addr netip.Addr, name, msg string) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	r := s.records[addr]
	if r == nil {
		r = &peerRecord{name: name, state: StateIdle, since: time.Now()}
		s.records[addr] = r
	}
	r.lastError = msg
}

// noteReason keeps the reason GoBGP gave for a peer's last state change.
func (s *Speaker) noteReason(addr, reason string) {
	a, err := netip.ParseAddr(addr)
	if err != nil || reason == "" || reason == "<nil>" {
		return
	}
	s.stateMu.Lock()
	s.reasons[a.Unmap()] = reason
	s.stateMu.Unlock()
}

// onEvent records a session's state change.
func (s *Speaker) onEvent(r *api.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil || pe.Type != api.WatchEventResponse_PeerEvent_STATE || pe.Peer.GetState() == nil {
		return
	}
	addr, err := netip.ParseAddr(pe.Peer.State.NeighborAddress)
	if err != nil {
		return
	}
	addr = addr.Unmap()
	st := stateOf(pe.Peer.State.SessionState)
	s.stateMu.Lock()
	rec := s.records[addr]
	if rec == nil || rec.state == st {
		s.stateMu.Unlock()
		return
	}
	was := rec.state
	rec.state, rec.since = st, time.Now()
	reason := s.reasons[addr]
	asn := pe.Peer.State.PeerAsn
	refuse := st == StateEstablished && rec.refuseASN != 0 && asn == rec.refuseASN
	switch {
	case refuse:
		rec.refused = fmt.Sprintf("the router's AS %d is this session's myASN, but dynamicASN is external; shut down, tried again in %s", asn, s.opts.RefuseRetry)
		rec.lastError = rec.refused
	case st == StateEstablished:
		rec.refused = ""
	case was == StateEstablished && rec.refused != "":
		rec.lastError = "session down: " + rec.refused
	case was == StateEstablished:
		rec.lastError = "session down"
		if reason != "" {
			rec.lastError = "session down: " + reason
		}
	}
	name := rec.name
	s.stateMu.Unlock()

	if refuse {
		s.log.Info("BGP session refused", "peer", addr.String(), "name", name, "peerASN", asn, "reason", "dynamicASN is external but the router's AS is myASN")
		go s.refuse(addr, rec)
		s.notify()
		return
	}

	switch {
	case st == StateEstablished:
		s.log.Info("BGP session established", "peer", addr.String(), "name", name)
	case was == StateEstablished:
		s.log.Info("BGP session down", "peer", addr.String(), "name", name, "state", string(st), "reason", reason)
	default:
		s.log.V(1).Info("BGP session state", "peer", addr.String(), "name", name, "state", string(st))
	}
	s.notify()
}

// refuse shuts a session down with a NOTIFICATION (Cease, administrative
// shutdown) and enables it again after RefuseRetry, unless the speaker
// stops first. GoBGP takes any router AS for a peer of AS 0, so a dynamic
// external session with a router of its own AS is closed once
// established. rec is the peer's record when it was refused: a peer
// removed or re-created since (a new record) is left alone.
func (s *Speaker) refuse(addr netip.Addr, rec *peerRecord) {
	same := func() bool {
		s.stateMu.Lock()
		defer s.stateMu.Unlock()
		return s.records[addr] == rec && !s.stopping.Load()
	}
	if !same() {
		return
	}
	s.stateMu.Lock()
	rec.disabled = true
	s.stateMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr.String(), Communication: "dynamicASN external: your AS is ours"})
	if err != nil {
		s.log.Error(err, "shut down BGP session", "peer", addr.String())
		return
	}
	time.AfterFunc(s.opts.RefuseRetry, func() {
		if !same() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr.String()})
		s.stateMu.Lock()
		rec.disabled = false
		s.stateMu.Unlock()
	})
}

// Reconnect starts the session with addr over when it is Idle: GoBGP
// waits 5 s in Idle after a session went down before it connects or
// accepts again; once BFD says the path is up there is no reason to.
// The peer is deleted and added again with the same settings; its routes
// stay. A session in any other state, or one this side shut down for a
// while (a refused dynamic AS), is left alone.
func (s *Speaker) Reconnect(ctx context.Context, addr netip.Addr) error {
	addr = addr.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, rec, state, ok := s.startable(addr)
	if !ok || state != StateIdle {
		return nil
	}
	return s.readd(ctx, addr, n, rec.name)
}

// Restart closes the session with addr when it is up, with why in the
// NOTIFICATION (Cease, administrative reset) and as the session's last
// error, and starts it over at once as Reconnect does, without waiting
// for GoBGP's state to say Idle: the peer connects, and takes the
// router's connection, from now on. It is what a BFD session going down
// does to its BGP session. A peer this side shut down for a while (a
// refused dynamic AS) is left alone.
func (s *Speaker) Restart(ctx context.Context, addr netip.Addr, why string) error {
	addr = addr.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, rec, state, ok := s.startable(addr)
	if !ok {
		return nil
	}
	if state == StateEstablished {
		s.stateMu.Lock()
		rec.refused = why
		s.stateMu.Unlock()
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Communication: why}); err != nil {
			return fmt.Errorf("reset BGP session with %s: %w", addr, err)
		}
		// Deleted at once, the peer would drop its NOTIFICATION unsent:
		// wait (briefly) for the session to go down.
		s.waitDown(ctx, rec, restartWait)
	}
	return s.readd(ctx, addr, n, rec.name)
}

// startable returns addr's neighbor and record and its session's state
// when the peer may be started over: configured, not shut down for a
// while (a refused dynamic AS), and the speaker not stopping. s.mu is
// held.
func (s *Speaker) startable(addr netip.Addr) (neighbor, *peerRecord, State, bool) {
	n, ok := s.neighbors[addr]
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	rec := s.records[addr]
	if !ok || rec == nil || rec.disabled || s.stopping.Load() {
		return n, nil, "", false
	}
	return n, rec, rec.state, true
}

// restartWait bounds how long Restart waits for a reset session to go
// down before it starts it over.
const restartWait = 200 * time.Millisecond

// waitDown polls rec until its session is no longer Established, at most
// d.
func (s *Speaker) waitDown(ctx context.Context, rec *peerRecord, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s.stateMu.Lock()
		up := rec.state == StateEstablished
		s.stateMu.Unlock()
		if !up {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readd deletes the peer and adds it again with the same settings; its
// routes stay. s.mu is held.
func (s *Speaker) readd(ctx context.Context, addr netip.Addr, n neighbor, name string) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("delete peer %s: %w", addr, err)
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: n.apiPeer()}); err != nil {
		delete(s.neighbors, addr) // the next Reconcile adds it
		return fmt.Errorf("add peer %s again: %w", addr, err)
	}
	s.log.V(1).Info("BGP peer started over", "peer", addr.String(), "name", name)
	return nil
}

// Sessions returns the state of every wanted session, sorted by peer
// name.
func (s *Speaker) Sessions() []SessionState {
	type live struct {
		state      State
		asn        uint32
		updates    uint64
		advertised int
	}
	lives := map[netip.Addr]live{}
	if s.active.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
			a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
			if err != nil {
				return
			}
			l := live{state: stateOf(p.GetState().GetSessionState())}
			l.updates = p.GetState().GetMessages().GetSent().GetUpdate()
			if l.state == StateEstablished {
				l.asn = p.GetState().GetPeerAsn()
				// With graceful restart negotiated GoBGP counts an
				// End-of-RIB marker per family among the advertised.
				eor := 0
				if p.GetGracefulRestart().GetEnabled() && hasCapability(p, &api.GracefulRestartCapability{}) {
					eor = 1
				}
				for _, af := range p.GetAfiSafis() {
					l.advertised += max(int(af.GetState().GetAdvertised())-eor, 0)
				}
			}
			lives[a.Unmap()] = l
		})
		cancel()
	}
	s.stateMu.Lock()
	out := make([]SessionState, 0, len(s.records))
	for addr, r := range s.records {
		st := SessionState{Peer: r.name, Address: addr, State: r.state, Since: r.since, LastError: r.lastError}
		if l, ok := lives[addr]; ok {
			st.State, st.PeerASN, st.UpdatesSent, st.PrefixesSent = l.state, l.asn, l.updates, l.advertised
		}
		out = append(out, st)
	}
	s.stateMu.Unlock()
	slices.SortFunc(out, func(a, b SessionState) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return a.Address.Compare(b.Address)
	})
	return out
}

// hasCapability reports whether the peer sent a capability of m's type.
func hasCapability(p *api.Peer, m proto.Message) bool {
	for _, c := range p.GetState().GetRemoteCap() {
		if c.MessageIs(m) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
