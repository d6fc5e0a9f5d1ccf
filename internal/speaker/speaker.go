package speaker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/election"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/model"
	"github.com/herald-lb/herald/internal/servicereq"
)

// Responder is a layer-2 responder (ARP or NDP): it answers, on each
// interface, for the addresses given.
type Responder interface {
	Reconcile(desired map[string][]netip.Addr) error
}

// Membership is the speakers' cluster as the loop needs it.
type Membership interface {
	// Members are the live members; Known adds those that failed (but did
	// not leave) since this process started.
	Members() []string
	Known() []string
	Claims() map[string][]election.Claim
	SetClaims(claims []election.Claim)
	// NoLink and SetNoLink share, per member, the interface sets
	// (LinkSetName) on which it has no working link.
	NoLink() map[string][]string
	SetNoLink(sets []string)
	Synced() bool
}

// Interfaces lists this node's interfaces to answer on: the default set
// for nil, else the named ones that exist and are up.
type Interfaces interface {
	Resolve(wanted []string) []string
	// LinkUp reports whether the named interface is up with a working
	// link (ifaces.Interface.LinkUp).
	LinkUp(name string) bool
}

// L2Loop computes the layer-2 announcements from the API server's state
// and the membership, and drives the responders to them. It runs as a
// Pass under a runner with a single key: every change recomputes the whole set.
type L2Loop struct {
	// IgnoreExcludeLB: nodes with the exclude-from-external-load-balancers
	// label announce too (--ignore-exclude-lb).
	IgnoreExcludeLB bool
	Client          kube.Reader
	Recorder        kube.EventRecorder
	Namespace       string
	NodeName        string
	Class           servicereq.Class
	ARP, NDP        Responder
	Membership      Membership // nil: memberlist off, Ready nodes are live
	Interfaces      Interfaces
	Status          *StatusWriter
	Metrics         *metrics.L2
	Log             logr.Logger
	// Now is the clock for claim epochs (time.Now when nil).
	Now func() time.Time
	// ServiceStore, when set, is read for the Services instead of
	// listing them through Client: the informer's own objects, read
	// only, where a List copies all of them (7 MB per pass at 10,000).
	ServiceStore interface{ List() []any }
	// Hold, when set, gates the responders (see Hold): the loop sets its
	// quorum, and after a stall resynchronizes the membership (when it
	// can Resync) and releases it once it has elected again.
	Hold *Hold
	// KernelARP, when set, is told every pass's desired announcements
	// (it looks for addresses the kernel answers ARP for by itself).
	KernelARP *KernelARPCheck

	// passNanos is how long the last pass took (BatchDelay).
	passNanos atomic.Int64
	// passed is set by the first full pass (Passed).
	passed atomic.Bool
	// settleUntil (Unix ns) is when a speaker that regained quorum stops
	// waiting for the rest of the members (healSettle).
	settleUntil atomic.Int64
	// linkBackUntil (Unix ns) is how long a speaker whose interfaces got
	// their link back waits for the members it lost meanwhile (healSettle);
	// 0 when not waiting.
	linkBackUntil atomic.Int64

	mu     sync.Mutex
	config lastGoodConfig
	owned  map[netip.Addr]ownedIP // what this node announces now
	// lastIfaces is the interfaces every interface spec of owned resolved
	// to at the last reconcile: when neither changes, the responders, the
	// claims and the status already are what they should be.
	lastIfaces map[string][]string

	// Takeover plans (plan.go). planGen counts input changes; planMu
	// guards plans and planTimer.
	planGen   atomic.Uint64
	planMu    sync.Mutex
	plans     *takeoverPlans
	planTimer *time.Timer
}

// joinedService is a Service that started sharing an IP this node
// already announced.
type joinedService struct {
	key model.ServiceKey
	ip  netip.Addr
}

type ownedIP struct {
	epoch      int64
	services   []model.ServiceKey
	interfaces []string
	// idle: claimed but not answered (its interfaces have no link; see
	// Reconcile).
	idle bool
}

var _ Pass = (*L2Loop)(nil)

// Batch delays for API events (BatchDelay): while the API server streams
// changes (10,000 Services created), passes run at most every
// batchFactor times their own duration, so the loop takes about a tenth
// of a core at any scale; a change waits at least minBatch, at most
// maxBatch.
const (
	minBatch    = 100 * time.Millisecond
	maxBatch    = 2 * time.Second
	batchFactor = 10
)

// BatchDelay is how long an API event waits for others before the pass
// that handles them all. Membership and interface changes do not wait.
func (l *L2Loop) BatchDelay() time.Duration {
	return min(max(batchFactor*time.Duration(l.passNanos.Load()), minBatch), maxBatch)
}

// Reconcile recomputes everything.
func (l *L2Loop) Reconcile(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	defer func() { l.passNanos.Store(int64(time.Since(start))) }()
	var held uint64
	if l.Hold != nil {
		if held = l.Hold.Held(); held != 0 {
			if wait := l.membersPending(l.settleUntil.Load(), nil); wait > 0 {
				return wait, nil
			}
			// This process stood still: learn what the others did
			// meanwhile before deciding anything.
			l.resync(ctx, "after a stall")
		}
	}
	l.invalidatePlans()
	gen := l.planGen.Load()
	snap, err := l.snapshot(ctx)
	if err != nil {
		return 0, err
	}
	if snap.Config == nil {
		// Nothing to announce, and no address may go to this node: it
		// could not answer for it.
		if l.Membership != nil {
			if !slices.Equal(snap.NoLink[l.NodeName], []string{NoConfigSet}) {
				l.Log.Info("no valid configuration yet: this node answers for no address, and the others leave it out")
			}
			l.Membership.SetNoLink([]string{NoConfigSet})
		}
		l.passed.Store(true)
		return 0, nil
	}
	if l.Membership != nil && !l.Membership.Synced() {
		// Until we know the others' claims we could take an address that
		// someone already answers for.
		return 200 * time.Millisecond, nil
	}
	ifc := newIfaceCache(l.Interfaces)
	if l.Membership != nil {
		// A node with no working link on the interfaces it would answer
		// on steps aside: it tells the others, which then elect among
		// themselves, and counts itself out at once.
		own := OwnNoLink(snap.Config, snap.Nodes[l.NodeName].Labels, ifc.linkUp)
		if snap.NoLink == nil {
			snap.NoLink = map[string][]string{}
		}
		if linkBack(snap.NoLink[l.NodeName], own) {
			// Interfaces got their link back. The others may have taken
			// this node's addresses over meanwhile, and it may have
			// missed it (cut off, it may even have counted them dead):
			// learn what they did before answering on them again.
			l.linkBackUntil.CompareAndSwap(0, time.Now().Add(healSettle).UnixNano())
			if wait := l.membersPending(l.linkBackUntil.Load(), snap.Nodes); wait > 0 {
				return wait, nil
			}
			l.linkBackUntil.Store(0)
			l.resync(ctx, "after a link came back")
			snap.Live, snap.Known, snap.Claims = l.Membership.Members(), l.Membership.Known(), l.Membership.Claims()
		}
		if !slices.Equal(own, snap.NoLink[l.NodeName]) {
			if len(own) > 0 {
				l.Log.Info("no working link on interfaces this node answers on; their addresses go to other nodes", "interfaces", own)
			} else {
				l.Log.Info("links working again", "node", l.NodeName)
			}
		}
		snap.NoLink[l.NodeName] = own
		l.Membership.SetNoLink(own)
	}
	desired := L2Desired(snap)
	if l.KernelARP != nil {
		l.KernelARP.Update(desired)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owned == nil {
		l.owned = map[netip.Addr]ownedIP{}
	}
	mayTakeOver := l.quorum(snap)
	if l.Metrics != nil && snap.Live != nil {
		l.Metrics.Members.Set(float64(len(snap.Live)))
		l.Metrics.Quorum.Set(map[bool]float64{true: 1}[mayTakeOver])
	}
	if l.Hold != nil {
		if l.Hold.SetQuorum(mayTakeOver) {
			// The rest of the cluster usually comes back within a few
			// gossip rounds; only members seen live bring their claims
			// in a resync, so wait for them before electing.
			l.Log.Info("most speakers are back; holding layer-2 answers until the membership is resynchronized")
			l.settleUntil.Store(time.Now().Add(healSettle).UnixNano())
			return healSettle, nil
		}
		if held != 0 {
			defer func() {
				l.Hold.Release(held)
				l.Log.Info("answering again after a stall", "owned", len(l.owned))
			}()
		}
	}
	now := l.now().UnixMilli()
	next := make(map[netip.Addr]ownedIP, len(l.owned))
	var gained []L2Announcement
	var joined []joinedService
	changed := false // beyond gained and lost: Services or interfaces of an IP
	for ip, a := range desired {
		if a.Owner != l.NodeName {
			continue
		}
		prev, had := l.owned[ip]
		if !had && (!mayTakeOver || !ifc.linkUp(a.Interfaces)) {
			continue
		}
		if had && prev.idle && !mayTakeOver {
			// Answering again on a link that came back is a takeover
			// too: not without quorum.
			next[ip] = prev
			continue
		}
		o := ownedIP{epoch: now, services: a.Services, interfaces: a.Interfaces}
		if had {
			o.epoch = prev.epoch
			if prev.idle || !slices.Equal(prev.services, o.services) || !slices.Equal(prev.interfaces, o.interfaces) {
				changed = true
				// A Service that starts sharing an IP this node
				// announces is assigned to this node too.
				for _, key := range o.services {
					if !slices.Contains(prev.services, key) {
						joined = append(joined, joinedService{key: key, ip: ip})
					}
				}
			}
		} else {
			gained = append(gained, a)
		}
		next[ip] = o
	}
	// An address this node answered for on interfaces that lost their
	// link: it stepped aside (it no longer answers, the others elect
	// among themselves) but keeps its claim, with its epoch, while the
	// link is down. So when the link comes back it never takes the
	// address back with a newer claim than the one that moved it; an
	// address nobody else took is simply answered again.
	var inUse map[netip.Addr]bool // the Services' addresses, when needed
	for ip, prev := range l.owned {
		if _, ok := next[ip]; ok || l.Membership == nil || ifc.linkUp(prev.interfaces) {
			continue
		}
		if inUse == nil {
			inUse = map[netip.Addr]bool{}
			for _, svc := range snap.Services {
				for _, a := range svc.IPs {
					inUse[a] = true
				}
			}
		}
		if !inUse[ip] {
			continue // its Service is gone
		}
		if !prev.idle {
			changed = true
		}
		prev.idle = true
		next[ip] = prev
	}
	var lost []netip.Addr
	for ip := range l.owned {
		if _, ok := next[ip]; !ok {
			lost = append(lost, ip)
		}
	}
	for _, o := range next {
		ifc.resolve(o.interfaces)
	}
	if !changed && len(gained) == 0 && len(lost) == 0 && l.lastIfaces != nil && maps.EqualFunc(ifc.seen, l.lastIfaces, slices.Equal) {
		// Nothing this node does changes: keep the responders, the
		// claims and the status as they are.
		l.passed.Store(true)
		l.schedulePlans(gen, snap)
		return 0, nil
	}
	l.lastIfaces = ifc.seen

	state := newResponderState()
	for ip, o := range next {
		if !o.idle {
			state.add(ip, ifc.resolve(o.interfaces))
		}
	}
	state.sort()
	v4, v6 := state.v4, state.v6
	errARP := l.ARP.Reconcile(v4)
	errNDP := l.NDP.Reconcile(v6)
	l.owned = next
	if l.Membership != nil {
		l.Membership.SetClaims(claimsOf(next))
	}
	if l.Metrics != nil {
		n4, n6 := 0, 0
		for ip, o := range next {
			if o.idle {
				continue
			}
			if ip.Is4() {
				n4++
			} else {
				n6++
			}
		}
		l.Metrics.AnnouncedIPs.WithLabelValues("arp").Set(float64(n4))
		l.Metrics.AnnouncedIPs.WithLabelValues("ndp").Set(float64(n6))
	}

	var events []assignedEvent
	if len(gained) > logEach {
		l.Log.Info("announcing", "addresses", len(gained), "node", l.NodeName)
	}
	for _, a := range gained {
		if len(gained) <= logEach {
			l.Log.Info("announcing", "ip", a.IP.String(), "pool", a.Pool, "node", l.NodeName)
		}
		for _, key := range a.Services {
			events = append(events, assignedEvent{key, a.IP})
		}
	}
	for _, js := range joined {
		events = append(events, assignedEvent{js.key, js.ip})
	}
	if len(events) > logEach {
		// A takeover: the gratuitous announcements go out now; the events
		// wait a moment rather than compete with them for the CPU.
		go func() {
			time.Sleep(takeoverEventDelay)
			l.events(context.WithoutCancel(ctx), events)
		}()
	} else {
		l.events(ctx, events)
	}
	if len(lost) > logEach {
		l.Log.Info("stopped announcing", "addresses", len(lost), "node", l.NodeName)
	} else {
		for _, ip := range lost {
			l.Log.Info("stopped announcing", "ip", ip.String(), "node", l.NodeName)
		}
	}
	if l.Status != nil {
		l.Status.Set(l.statusView(next, ifc.resolve))
	}
	if errARP != nil || errNDP != nil {
		l.lastIfaces = nil // try again in full
		return 0, fmt.Errorf("responders: arp: %v, ndp: %v", errARP, errNDP)
	}
	l.passed.Store(true)
	l.schedulePlans(gen, snap)
	return 0, nil
}

// Passed reports whether a pass has gone through in full: with its
// caches synced and, with memberlist, the membership, it has set the
// responders, the claims and the status once.
func (l *L2Loop) Passed() bool { return l.passed.Load() }

// claimsOf is the claims of owned, sorted by IP.
func claimsOf(owned map[netip.Addr]ownedIP) []election.Claim {
	claims := make([]election.Claim, 0, len(owned))
	for ip, o := range owned {
		claims = append(claims, election.Claim{IP: ip, Epoch: o.epoch})
	}
	sort.Slice(claims, func(i, j int) bool { return claims[i].IP.Less(claims[j].IP) })
	return claims
}

// ifaceCache resolves each distinct interface spec once (nil: the default
// set), not once per IP; seen maps every spec met to its interfaces.
type ifaceCache struct {
	ifaces Interfaces
	seen   map[string][]string
	up     map[string]bool // linkUp, by spec
}

func newIfaceCache(i Interfaces) *ifaceCache {
	return &ifaceCache{ifaces: i, seen: map[string][]string{}, up: map[string]bool{}}
}

func (c *ifaceCache) resolve(spec []string) []string {
	k := LinkSetName(spec)
	r, ok := c.seen[k]
	if !ok {
		r = c.ifaces.Resolve(spec)
		c.seen[k] = r
	}
	return r
}

// linkUp reports whether an address on spec's interfaces could be
// announced now: one of them has a working link. A set that resolves to
// no interface on this node (an interface it does not have, or one
// deleted) has none: the node could not answer, so it takes nothing over
// and the others elect among themselves. A node whose links are down is cut off:
// what it sees die may be its own isolation, and an address it took over
// then would carry a newer claim than the node that really has it, and
// move to it when the link comes back (see the election's newest-claim
// rule). It takes nothing over until a link works again.
func (c *ifaceCache) linkUp(spec []string) bool {
	k := LinkSetName(spec)
	up, ok := c.up[k]
	if !ok {
		names := c.resolve(spec)
		for _, n := range names {
			if c.ifaces.LinkUp(n) {
				up = true
				break
			}
		}
		c.up[k] = up
	}
	return up
}

// responderState is what the responders are given: interface -> the
// IPv4 (ARP) or IPv6 (NDP) addresses answered on it.
type responderState struct {
	v4, v6 map[string][]netip.Addr
}

func newResponderState() responderState {
	return responderState{v4: map[string][]netip.Addr{}, v6: map[string][]netip.Addr{}}
}

func (s responderState) add(ip netip.Addr, ifaces []string) {
	m := s.v6
	if ip.Is4() {
		m = s.v4
	}
	for _, iface := range ifaces {
		m[iface] = append(m[iface], ip)
	}
}

// sort orders every interface's addresses.
func (s responderState) sort() {
	for _, m := range []map[string][]netip.Addr{s.v4, s.v6} {
		for k := range m {
			slices.SortFunc(m[k], netip.Addr.Compare)
		}
	}
}

// logEach is how many addresses gained or lost in one pass are logged one
// by one; more (a takeover of a whole node's addresses) make one line, and
// the Services' nodeAssigned events and ServiceL2Status say which.
const logEach = 32

// healSettle is how long at most a speaker that regained quorum (a
// healed partition) waits, held, for the rest of the known members to be
// live again before it resynchronizes and elects: a member's claims come
// in a resync only once it is seen live.
const healSettle = 3 * time.Second

// linkBack reports whether some interface set of before (without link)
// is not in now: it got its link back.
func linkBack(before, now []string) bool {
	for _, s := range before {
		if !slices.Contains(now, s) {
			return true
		}
	}
	return false
}

// membersPending returns how long (at most 100 ms at a time) a pass still
// waits, until deadline (Unix ns), for known members that are not live
// again; 0 once they all are, the deadline has passed, or there is no
// membership.
func (l *L2Loop) membersPending(deadline int64, nodes map[string]Node) time.Duration {
	wait := time.Until(time.Unix(0, deadline))
	if wait <= 0 || l.Membership == nil || allKnownLive(l.Membership, nodes) {
		return 0
	}
	return min(wait, 100*time.Millisecond)
}

// resync exchanges the full state with the live members (when the
// membership can), so that the pass sees what they did meanwhile.
func (l *L2Loop) resync(ctx context.Context, why string) {
	r, ok := l.Membership.(interface{ Resync(context.Context) error })
	if !ok {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.Resync(rctx); err != nil {
		l.Log.Info("resynchronizing the membership "+why+" failed", "err", err.Error())
	}
}

// allKnownLive reports whether every known member whose Node exists and
// is Ready (nodes; nil: every known member) is live: a node removed from
// the cluster, or down, is not waited for.
func allKnownLive(m Membership, nodes map[string]Node) bool {
	live := m.Members()
	for _, k := range m.Known() {
		if n, ok := nodes[k]; nodes != nil && (!ok || !n.Ready) {
			continue
		}
		if !slices.Contains(live, k) {
			return false
		}
	}
	return true
}

// quorum reports whether this node may take over addresses: it must see at
// least half of the known speakers (members seen alive since it started,
// less those that left gracefully and those whose Node is gone or not
// Ready) as live. An isolated node (its link down) takes nothing over and
// its responders go quiet (Hold), so a healed partition does not move
// addresses back to it.
func (l *L2Loop) quorum(s Snapshot) bool {
	if s.Live == nil {
		return true
	}
	known, live := 0, 0
	for _, name := range s.Known {
		if n, ok := s.Nodes[name]; ok && n.Ready {
			known++
		}
	}
	// Live members count as the known ones do: only those whose Node
	// exists and is Ready (a member that is no Node must not make up for
	// a speaker this one cannot see).
	for _, name := range s.Live {
		if n, ok := s.Nodes[name]; ok && n.Ready {
			live++
		}
	}
	return live*2 >= known
}

func (l *L2Loop) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// assignedEvent is a nodeAssigned event due: Service key now announced
// through ip from this node.
type assignedEvent struct {
	key model.ServiceKey
	ip  netip.Addr
}

// takeoverEventDelay is how long the events of a takeover wait.
const takeoverEventDelay = 250 * time.Millisecond

func (l *L2Loop) events(ctx context.Context, evs []assignedEvent) {
	for _, e := range evs {
		if obj := serviceForEvent(ctx, l.Client, l.ServiceStore, e.key); obj != nil {
			l.Recorder.Event(obj, corev1.EventTypeNormal, "nodeAssigned", fmt.Sprintf("announcing %s from node %s", e.ip, l.NodeName))
		}
	}
}

// serviceForEvent returns the Service key names, for an event's
// reference: from store when set (the cache holds cachedServices, which
// the client cannot return), else through c; nil if it is gone.
func serviceForEvent(ctx context.Context, c kube.Reader, store interface{ List() []any }, key model.ServiceKey) runtime.Object {
	if s, ok := store.(interface {
		GetByKey(string) (any, bool, error)
	}); ok {
		o, exists, err := s.GetByKey(key.Namespace + "/" + key.Name)
		if err != nil || !exists {
			return nil
		}
		if obj, ok := o.(runtime.Object); ok {
			return obj
		}
		return nil
	}
	var svc corev1.Service
	if err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, &svc); err != nil {
		return nil
	}
	return &svc
}

// statusView groups this node's announcements by Service.
func (l *L2Loop) statusView(owned map[netip.Addr]ownedIP, resolve func([]string) []string) map[model.ServiceKey]L2StatusEntry {
	out := make(map[model.ServiceKey]L2StatusEntry, len(owned))
	for ip, o := range owned {
		if o.idle {
			continue
		}
		ifs := resolve(o.interfaces)
		for _, key := range o.services {
			e := out[key]
			e.IPs = append(e.IPs, ip)
			e.Interfaces = append(e.Interfaces, ifs...)
			out[key] = e
		}
	}
	for k, e := range out {
		slices.SortFunc(e.IPs, netip.Addr.Compare)
		sort.Strings(e.Interfaces)
		e.Interfaces = slices.Compact(e.Interfaces)
		out[k] = e
	}
	return out
}

// lastGoodConfig is the last configuration that validated: a bad
// configuration never stops announcements.
type lastGoodConfig struct {
	mu  sync.Mutex
	cfg *model.Config
}

// load builds the configuration from what c holds in ns and returns it,
// or, when it does not validate, the last one that did (nil before any).
func (g *lastGoodConfig) load(ctx context.Context, c kube.Reader, ns string, log logr.Logger) (*model.Config, error) {
	res, err := kube.LoadResources(ctx, c, ns)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Build(res, config.Options{Namespace: ns})
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		log.V(1).Info("configuration rejected; keeping the last good one", "error", err.Error())
	} else {
		g.cfg = cfg
	}
	return g.cfg, nil
}

// snapshot reads the cache into a Snapshot. The configuration is the last
// one that validated: a bad configuration never stops announcements.
func (l *L2Loop) snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	var err error
	if snap.Config, err = l.config.load(ctx, l.Client, l.Namespace, l.Log); err != nil {
		return snap, err
	}

	// The cache's objects are read, never modified, and not kept past
	// this reconcile (Node labels are read-only too): no copies of
	// 10,000 Services per pass.
	if snap.Services, err = announcedServices(ctx, l.Client, l.ServiceStore, l.Class); err != nil {
		return snap, err
	}

	var nodes corev1.NodeList
	if err := l.Client.List(ctx, &nodes); err != nil {
		return snap, err
	}
	snap.Nodes = make(map[string]Node, len(nodes.Items))
	for i := range nodes.Items {
		snap.Nodes[nodes.Items[i].Name] = nodeFrom(&nodes.Items[i], l.IgnoreExcludeLB)
	}

	var slices discoveryv1.EndpointSliceList
	if err := l.Client.List(ctx, &slices); err != nil {
		return snap, err
	}
	snap.Endpoints = ServingNodes(slices.Items)

	if l.Membership != nil {
		snap.Live = l.Membership.Members()
		snap.Known = l.Membership.Known()
		snap.Claims = l.Membership.Claims()
		snap.NoLink = l.Membership.NoLink()
	}
	return snap, nil
}

func nodeFrom(n *corev1.Node, ignoreExcludeLabel bool) Node {
	out := Node{Name: n.Name, Labels: n.Labels, Leaving: n.DeletionTimestamp != nil, Cordoned: n.Spec.Unschedulable, IgnoreExcludeLabel: ignoreExcludeLabel}
	for _, t := range n.Spec.Taints {
		if t.Key == v1beta1.TaintToBeDeleted {
			out.Leaving = true
		}
	}
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			out.Ready = c.Status == corev1.ConditionTrue
		case corev1.NodeNetworkUnavailable:
			out.NetworkUnavailable = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// announcedServices lists the Services Herald serves that have addresses,
// from store (the informer's own objects, read only) when set, else
// through c. The IPs slices are the cache's: callers only read them.
func announcedServices(ctx context.Context, c kube.Reader, store interface{ List() []any }, class servicereq.Class) ([]Service, error) {
	var out []Service
	if store != nil {
		objs := store.List()
		out = make([]Service, 0, len(objs))
		for _, o := range objs {
			switch s := o.(type) {
			case *cachedService:
				if s.Announced {
					out = append(out, s.Svc)
				}
			case *corev1.Service:
				if svc, ok := announcedService(class, s); ok {
					out = append(out, svc)
				}
			}
		}
		return out, nil
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return nil, err
	}
	out = make([]Service, 0, len(svcs.Items))
	for i := range svcs.Items {
		if svc, ok := announcedService(class, &svcs.Items[i]); ok {
			out = append(out, svc)
		}
	}
	return out, nil
}

// announcedService is s as the speakers see it, if Herald serves it and
// it has addresses.
func announcedService(class servicereq.Class, s *corev1.Service) (Service, bool) {
	if !class.Handles(s) {
		return Service{}, false
	}
	svc := Service{
		Key:   model.ServiceKey{Namespace: s.Namespace, Name: s.Name},
		Local: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil {
			svc.IPs = append(svc.IPs, ip.Unmap())
		}
	}
	return svc, len(svc.IPs) > 0
}
