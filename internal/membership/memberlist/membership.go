package memberlist

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	ml "github.com/hashicorp/memberlist"

	"github.com/herald-lb/herald/internal/election"
)

// Membership is this speaker's view of the speaker cluster: which members
// are alive and which IPs each of them claims. Create it with New, run it
// with Run; every other method is safe for concurrent use at any time,
// before, during and after Run.
type Membership struct {
	opts Options
	log  logr.Logger

	mu      sync.Mutex
	seeds   []string
	table   *table
	queue   *ml.TransmitLimitedQueue // claims gossip; memberlist takes from it
	replyTo map[string]struct{}      // members that asked for our record
	// peers holds a copy of the name and address of every live member,
	// self included, taken in memberlist's event callbacks (they run
	// under memberlist's node lock). The *ml.Node values memberlist hands
	// out elsewhere (Members, LocalNode) are rewritten in place whenever
	// an alive message of their member arrives (a refutation, a meta
	// update such as a graceful leave's): reading them later races.
	peers map[string]ml.Node

	list    atomic.Pointer[ml.Memberlist]
	numLive atomic.Int64 // live members, self included, for the queue's retransmit count
	synced  atomic.Bool
	started atomic.Bool
	leaving atomic.Bool // our node meta says we leave gracefully

	// noLink is our interface sets without a working link (SetNoLink),
	// canonical, under mu; noLinkMeta its encoding, read by NodeMeta
	// (called from inside memberlist: it takes no lock of ours).
	noLink     []string
	noLinkMeta atomic.Pointer[[]byte]
	metaChange chan struct{} // cap 1: our node meta changed

	changes  chan struct{} // cap 1: coalesced "something changed"
	wake     chan struct{} // cap 1: a pull or a reply is pending
	newSeeds chan struct{} // cap 1: SetSeeds was called

	// For tests: ready is closed once memberlist runs; closing abort stops
	// Run without leaving (a silent death).
	ready     chan struct{}
	abort     chan struct{}
	abortOnce sync.Once
}

// New validates opts and returns a Membership. It starts nothing: no
// socket is opened before Run.
func New(opts Options) (*Membership, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	o.SecretKey = slices.Clone(o.SecretKey)
	o.Join = slices.Clone(o.Join)
	m := &Membership{
		opts:       o,
		log:        o.Log,
		table:      newTable(o.NodeName, uint64(time.Now().UnixNano()), 2*o.GossipInterval, max(time.Second, 10*o.GossipInterval)),
		replyTo:    make(map[string]struct{}),
		peers:      make(map[string]ml.Node),
		changes:    make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		newSeeds:   make(chan struct{}, 1),
		metaChange: make(chan struct{}, 1),
		seeds:      o.Join,
		ready:      make(chan struct{}),
		abort:      make(chan struct{}),
	}
	m.numLive.Store(1)
	m.queue = &ml.TransmitLimitedQueue{
		NumNodes:       func() int { return int(m.numLive.Load()) },
		RetransmitMult: retransmitMult,
	}
	return m, nil
}

// Run starts memberlist, joins the seeds (retrying with backoff until one
// answers, and every ReconnectInterval afterwards for seeds that are not
// members, which heals partitions), and serves until ctx ends. Then it
// leaves the cluster gracefully (the others drop us at once instead of
// waiting for failure detection) and shuts memberlist down. It returns an
// error only when memberlist cannot start; Run may be called once.
func (m *Membership) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("membership already ran")
	}
	where := net.JoinHostPort(m.opts.BindAddr, strconv.Itoa(m.opts.BindPort))
	tr, err := newTransport(m.opts.BindAddr, m.opts.BindPort)
	if err != nil {
		return fmt.Errorf("start memberlist on %s: %w", where, err)
	}
	c := m.config()
	c.Transport = tr
	c.BindPort, c.AdvertisePort = tr.port(), tr.port()
	list, err := ml.Create(c)
	if err != nil {
		_ = tr.Shutdown()
		return fmt.Errorf("start memberlist on %s: %w", where, err)
	}
	m.list.Store(list)
	close(m.ready)
	// Read once, before anything can rewrite our node in place (see peers).
	selfAddr := list.LocalNode().Address()
	m.log.Info("memberlist started", "node", m.opts.NodeName, "addr", selfAddr, "encrypted", len(m.opts.SecretKey) > 0)

	// Members that knew an earlier process of ours hold its claims; a
	// record with our new epoch replaces them.
	m.mu.Lock()
	m.queueLocked(m.ownMessageLocked(nil))
	m.mu.Unlock()

	wctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.joinLoop(wctx, list, selfAddr) })
	wg.Go(func() { m.sendLoop(wctx, list) })
	wg.Go(func() { m.metaLoop(wctx, list) })

	silent := false
	select {
	case <-ctx.Done():
	case <-m.abort:
		silent = true
	}
	cancel()
	if !silent {
		start := time.Now()
		// Tell the others that we leave rather than fail (so that we drop
		// out of their Known), then leave.
		m.leaving.Store(true)
		m.sayLeaving(list)
		if err := list.UpdateNode(m.opts.LeaveTimeout); err != nil {
			m.log.Info("announcing the graceful leave incomplete; some members may count us as failed", "err", err.Error())
		}
		if err := list.Leave(m.opts.LeaveTimeout); err != nil {
			m.log.Info("graceful leave incomplete; the others will detect our absence", "err", err.Error())
		} else {
			m.log.Info("left the memberlist cluster", "took", time.Since(start).String())
		}
	}
	if err := list.Shutdown(); err != nil {
		m.log.Error(err, "shutting memberlist down")
	}
	wg.Wait()

	m.mu.Lock()
	e := m.table.leaveAll(time.Now())
	clear(m.peers)
	m.mu.Unlock()
	m.numLive.Store(1)
	m.apply(e)
	return nil
}

// config builds the memberlist configuration.
func (m *Membership) config() *ml.Config {
	o := m.opts
	c := ml.DefaultLANConfig()
	c.Name = o.NodeName
	c.BindAddr = o.BindAddr
	c.BindPort = o.BindPort
	c.AdvertiseAddr = o.AdvertiseAddr
	c.AdvertisePort = o.BindPort
	c.ProbeInterval = o.ProbeInterval
	c.ProbeTimeout = o.ProbeTimeout
	c.SuspicionMult = o.SuspicionMult
	c.GossipInterval = o.GossipInterval
	c.PushPullInterval = o.PushPullInterval
	c.GossipToTheDeadTime = gossipToTheDead
	c.RetransmitMult = retransmitMult
	c.TCPTimeout = tcpTimeout
	// LZW on every probe and ack costs more CPU than it saves bytes
	// (claims are compact already, push/pull is TCP). Members still read
	// compressed messages, so speakers of either setting mix.
	c.EnableCompression = false
	if len(o.SecretKey) > 0 {
		c.SecretKey = slices.Clone(o.SecretKey)
	}
	d := delegate{m}
	c.Delegate = d
	c.Events = d
	c.Logger = newStdLogger(m.log.WithName("memberlist"))
	return c
}

// Members returns the names of the live members, self included, sorted.
func (m *Membership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table.members()
}

// Known returns the names of the members seen live since this process
// started, self included, sorted: the live members and those that failed
// (died, or cut off, without leaving), but not those that left the
// cluster gracefully (shut down by Run). A member that comes back is
// live again. A member that failed stays known until it comes back and
// leaves, or this process restarts.
func (m *Membership) Known() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table.known()
}

// Claims returns the latest known claims of the live members, self
// included; members claiming nothing (or whose claims are not known yet)
// are absent. Each list is canonical (see SetClaims): sorted by IP, one
// claim per IP. The slices are shared and read-only: Membership never
// modifies them (a change replaces them), and neither may the caller.
func (m *Membership) Claims() map[string][]election.Claim {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table.claims()
}

// SetClaims sets the IPs this member announces, each with the epoch of
// its takeover, and gossips the change at once: a claim whose epoch
// changed is a change. IPv4-mapped IPv6 addresses are unmapped, zones
// and invalid addresses dropped; of several claims on one IP the newest
// is kept. It does not fire Changes (the caller knows).
func (m *Membership) SetClaims(claims []election.Claim) {
	c := canonical(claims)
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.table.setOwn(c); ok {
		m.queueLocked(m.ownMessageLocked(&d))
	}
}

// SetNoLink sets the interface sets (opaque names, none with a newline)
// on which this member has no working link, and gossips them in its node
// meta: the others read them with NoLink and leave this member out of
// the candidates for the addresses answered on those sets. Sets that do
// not fit memberlist's meta size are not gossiped.
func (m *Membership) SetNoLink(sets []string) {
	c := slices.Clone(sets)
	c = slices.DeleteFunc(c, func(s string) bool { return strings.Contains(s, "\n") })
	slices.Sort(c)
	c = slices.Compact(c)
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.Equal(c, m.noLink) {
		return
	}
	m.noLink = c
	meta, n := encodeNoLinkMeta(c, ml.MetaMaxSize)
	if n < len(c) {
		m.log.Info("too many interface sets without link to gossip; some stay unknown to the others", "sets", len(c), "gossiped", n)
	}
	m.noLinkMeta.Store(&meta)
	select {
	case m.metaChange <- struct{}{}:
	default:
	}
}

// NoLink returns, for the live members (self included) that have
// reported some, the interface sets on which they have no working link
// (see SetNoLink). The slices are read-only.
func (m *Membership) NoLink() map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]string{}
	if len(m.noLink) > 0 {
		out[m.opts.NodeName] = m.noLink
	}
	for name, n := range m.peers {
		if name == m.opts.NodeName {
			continue
		}
		if sets := decodeNoLinkMeta(n.Meta); len(sets) > 0 {
			out[name] = sets
		}
	}
	return out
}

// metaLoop gossips our node meta each time it changes (UpdateNode waits
// for the broadcast, so not on the caller's time).
func (m *Membership) metaLoop(ctx context.Context, list *ml.Memberlist) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.metaChange:
		}
		if err := list.UpdateNode(m.opts.LeaveTimeout); err != nil {
			m.log.V(1).Info("gossiping our node meta incomplete", "err", err.Error())
		}
	}
}

// Resync exchanges the full state (push/pull over TCP, as a join does)
// with every other live member, so that a member that stood still
// (SIGSTOP, a frozen VM) learns what changed meanwhile, claims included,
// before it acts on its old view. It returns when every exchange ended or
// ctx did; members that do not answer are left to failure detection.
func (m *Membership) Resync(ctx context.Context) error {
	list := m.list.Load()
	if list == nil {
		return errors.New("membership not running")
	}
	self := list.LocalNode().Name
	var addrs []string
	m.mu.Lock()
	for name, n := range m.peers {
		if name != self {
			addrs = append(addrs, n.Address())
		}
	}
	m.mu.Unlock()
	if len(addrs) == 0 {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := list.Join(addrs)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetSeeds replaces the seeds (Options.Join), for a caller that learns
// them after New, e.g. from the Node addresses once its caches synced.
// While Run has not joined anyone, the new seeds are tried at once.
func (m *Membership) SetSeeds(seeds []string) error {
	if err := validateSeeds(seeds); err != nil {
		return err
	}
	m.mu.Lock()
	m.seeds = slices.Clone(seeds)
	m.mu.Unlock()
	select {
	case m.newSeeds <- struct{}{}:
	default:
	}
	return nil
}

// Changes returns a channel that receives a value after the members
// (live or known), the claims of another member or Synced changed. Notifications coalesce:
// one value may stand for many changes, so read the state after each.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// Synced reports whether this member has the cluster's state: it merged
// a push/pull state from another member (a join does one), or it has no
// seed to join, or aloneAfter rounds of join attempts failed. Before
// that, Claims may miss claims of members we cannot see yet.
func (m *Membership) Synced() bool { return m.synced.Load() }

func (m *Membership) setSynced(why string) {
	if m.synced.CompareAndSwap(false, true) {
		m.log.Info("membership synced", "how", why)
		m.notify()
	}
}

func (m *Membership) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

func (m *Membership) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Membership) apply(e effect) {
	if e.changed {
		m.notify()
	}
	if e.behind {
		m.poke()
	}
}

// ownMessageLocked returns the gossip message for our current record: the
// whole set when it fits a packet, else the delta d when given and it
// fits, else a notice that makes the others pull the record over TCP.
func (m *Membership) ownMessageLocked(d *wireDelta) *broadcast {
	own := m.table.own
	b := &broadcast{node: own.name, v: own.v}
	if minClaimLen*len(own.claims) < maxGossipMsg { // else it cannot fit
		if msg := encodeFull(own); len(msg) <= maxGossipMsg {
			b.msg = msg
			return b
		}
	}
	if d != nil && minClaimLen*len(d.added)+len(d.removed) < maxGossipMsg {
		if msg := encodeDelta(*d); len(msg) <= maxGossipMsg {
			b.msg, b.delta = msg, true
			return b
		}
	}
	b.msg = encodeNotice(own.name, own.v)
	return b
}

func (m *Membership) queueLocked(b *broadcast) {
	m.queue.QueueBroadcast(b)
	m.queue.Prune(maxQueued)
}

// handleMsg handles a claims message from gossip or a TCP user message.
func (m *Membership) handleMsg(buf []byte) {
	msg, err := decode(buf)
	if err != nil {
		m.log.V(1).Info("dropping a claims message", "err", err.Error())
		return
	}
	now := time.Now()
	if msg.kind == kindLeave {
		// memberlist still has the leaver alive: forget its address only
		// if the notice took effect (not one from an earlier process).
		m.drop(msg.name, true, false, func() effect { return m.table.leaveNotice(msg.name, msg.v, now) })
		return
	}
	m.mu.Lock()
	var e effect
	var relay *broadcast
	switch msg.kind {
	case kindFull:
		e = m.table.merge(msg.rec, now)
		relay = &broadcast{node: msg.rec.name, v: msg.rec.v}
	case kindDelta:
		e = m.table.applyDelta(msg.delta, now)
		relay = &broadcast{node: msg.delta.name, v: msg.delta.v, delta: true}
	case kindNotice:
		e = m.table.notice(msg.name, msg.v, now)
		relay = &broadcast{node: msg.name, v: msg.v}
	case kindReply:
		e = m.table.merge(msg.rec, now)
	case kindPull:
		e = m.table.seenOwn(msg.v)
		if msg.name != "" && msg.name != m.opts.NodeName {
			m.replyTo[msg.name] = struct{}{}
			e.behind = true // wakes the sender
		}
	}
	if e.rebroadcast && relay != nil {
		relay.msg = slices.Clone(buf)
		m.queueLocked(relay)
	}
	if e.reannounce {
		m.queueLocked(m.ownMessageLocked(nil))
	}
	m.mu.Unlock()
	m.apply(e)
}

// mergeRemote handles the state of a push/pull.
func (m *Membership) mergeRemote(buf []byte) {
	msg, err := decode(buf)
	if err == nil && msg.kind != kindState {
		err = fmt.Errorf("%w: kind %d in a push/pull", errMalformed, msg.kind)
	}
	if err != nil {
		m.log.V(1).Info("dropping a push/pull state", "err", err.Error())
		return
	}
	if msg.name == m.opts.NodeName {
		return // we joined ourselves
	}
	m.mu.Lock()
	e := m.table.mergeState(msg.records, time.Now())
	if e.reannounce {
		m.queueLocked(m.ownMessageLocked(nil))
	}
	m.mu.Unlock()
	m.apply(e)
	m.setSynced("state from " + msg.name)
}

// memberUp handles a member that joined (or came back), self included.
func (m *Membership) memberUp(n *ml.Node) {
	name := n.Name
	m.mu.Lock()
	m.peers[name] = nodeCopy(n)
	e := m.table.join(name, time.Now())
	if e.changed {
		// Welcome it with our record: a member that comes back from a
		// partition may never have seen us fail, so nothing makes it pull
		// our record, and what it holds of it is from before the
		// partition (it misses the takeovers made meanwhile until the
		// next push/pull).
		m.replyTo[name] = struct{}{}
	}
	m.numLive.Store(int64(len(m.table.members())))
	m.mu.Unlock()
	if e.changed {
		m.log.Info("member up", "peer", name)
		m.poke()
	}
	m.apply(e)
}

// memberUpdated handles a live member whose address or meta changed.
func (m *Membership) memberUpdated(n *ml.Node) {
	m.mu.Lock()
	old, ok := m.peers[n.Name]
	m.peers[n.Name] = nodeCopy(n)
	m.mu.Unlock()
	if ok && !slices.Equal(decodeNoLinkMeta(old.Meta), decodeNoLinkMeta(n.Meta)) {
		m.log.Info("member's links changed", "peer", n.Name, "noLink", decodeNoLinkMeta(n.Meta))
		m.notify()
	}
}

// memberDown handles a member that failed or, when left, left gracefully.
func (m *Membership) memberDown(name string, left bool) {
	m.drop(name, left, true, func() effect { return m.table.leave(name, left, time.Now()) })
}

// drop applies change, a member's departure from the table, under the
// lock, and forgets the member's address when forget is set or the
// change took effect.
func (m *Membership) drop(name string, left, forget bool, change func() effect) {
	m.mu.Lock()
	e := change()
	if forget || e.changed {
		delete(m.peers, name)
	}
	m.numLive.Store(int64(len(m.table.members())))
	m.mu.Unlock()
	if e.changed {
		m.log.Info("member down", "peer", name, "left", left)
	}
	m.apply(e)
}

// joinLoop joins the seeds: at once, then with backoff until one answers,
// then every ReconnectInterval for the seeds that are not members.
func (m *Membership) joinLoop(ctx context.Context, list *ml.Memberlist, selfAddr string) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	delay, failures, joined := joinBackoff, 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.newSeeds:
			if joined {
				continue // the next reconnect round uses them
			}
		}
		m.mu.Lock()
		seeds := slices.DeleteFunc(slices.Clone(m.seeds), func(s string) bool { return s == selfAddr })
		m.mu.Unlock()

		next := m.opts.ReconnectInterval
		switch missing := m.missingSeeds(seeds); {
		case len(seeds) == 0:
			m.setSynced("no seed to join")
		case len(missing) == 0:
			joined = true
		case m.joinOne(list, missing, joined):
			joined = true
			delay = joinBackoff
		case !joined:
			failures++
			if failures == aloneAfter {
				m.setSynced("no seed answered; alone")
			}
			next = delay
			delay = min(2*delay, m.opts.ReconnectInterval)
		}
		timer.Reset(next)
	}
}

// missingSeeds returns the seeds that are no live member's address, in
// random order.
func (m *Membership) missingSeeds(seeds []string) []string {
	have := make(map[string]bool)
	m.mu.Lock()
	for _, n := range m.peers {
		have[n.Address()] = true
	}
	m.mu.Unlock()
	var out []string
	for _, s := range seeds {
		if !have[s] {
			out = append(out, s)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// joinOne tries the seeds one by one until a join brings in another
// member. Once joined, a round tries at most reconnectTries seeds: seeds
// that never answer (nodes without a speaker) must not cost a timeout
// each every round.
func (m *Membership) joinOne(list *ml.Memberlist, seeds []string, joined bool) bool {
	if joined && len(seeds) > reconnectTries {
		seeds = seeds[:reconnectTries]
	}
	for _, s := range seeds {
		n, err := list.Join([]string{s})
		if n > 0 && list.NumMembers() > 1 {
			m.log.V(1).Info("joined", "peer", s)
			return true
		}
		if err != nil {
			m.log.V(1).Info("join attempt failed", "peer", s, "err", err.Error())
		}
	}
	return false
}

// sendLoop does the TCP side of claims: it pulls records from members we
// are behind on and answers the pulls of others with our record.
func (m *Membership) sendLoop(ctx context.Context, list *ml.Memberlist) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		m.mu.Lock()
		pulls, next := m.table.pullsDue(time.Now())
		out := make([]outMsg, 0, len(pulls)+len(m.replyTo))
		for _, name := range pulls {
			out = append(out, outMsg{name, encodePull(m.opts.NodeName, m.table.heardOf(name))})
		}
		if len(m.replyTo) > 0 {
			reply := encodeReply(m.table.own)
			for name := range m.replyTo {
				out = append(out, outMsg{name, reply})
			}
			clear(m.replyTo)
		}
		m.mu.Unlock()
		m.sendTo(list, out)

		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

type outMsg struct {
	to  string
	msg []byte
}

// sendTo sends each message to its member over TCP, concurrently.
func (m *Membership) sendTo(list *ml.Memberlist, msgs []outMsg) {
	if len(msgs) == 0 {
		return
	}
	type send struct {
		to  ml.Node
		msg []byte
	}
	var sends []send
	m.mu.Lock()
	for _, o := range msgs {
		if n, ok := m.peers[o.to]; ok {
			sends = append(sends, send{n, o.msg})
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, sd := range sends {
		wg.Go(func() {
			if err := list.SendReliable(&sd.to, sd.msg); err != nil {
				m.log.V(1).Info("sending claims message failed", "peer", sd.to.Name, "err", err.Error())
			}
		})
	}
	wg.Wait()
}

// sayLeaving tells every member straight away (one UDP packet each) that
// this process leaves: memberlist's own leave reaches them only with the
// next gossip rounds (UpdateNode, then Leave: up to two GossipIntervals),
// and the next owners should take over at once.
func (m *Membership) sayLeaving(list *ml.Memberlist) {
	m.mu.Lock()
	msg := encodeLeave(m.opts.NodeName, m.table.own.v)
	peers := make([]ml.Node, 0, len(m.peers))
	for name, n := range m.peers {
		if name != m.opts.NodeName {
			peers = append(peers, n)
		}
	}
	m.mu.Unlock()
	for i := range peers {
		if err := list.SendBestEffort(&peers[i], msg); err != nil {
			m.log.V(1).Info("telling a member we leave failed", "peer", peers[i].Name, "err", err.Error())
		}
	}
}

// nodeCopy copies what we use of n: its name, address and meta.
func nodeCopy(n *ml.Node) ml.Node {
	return ml.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port, Meta: slices.Clone(n.Meta)}
}

// abortSilently stops Run without leaving the cluster, as a crash would
// (tests).
func (m *Membership) abortSilently() {
	m.abortOnce.Do(func() { close(m.abort) })
}
