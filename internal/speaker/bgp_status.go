package speaker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/announce/bfd"
	"github.com/herald-lb/herald/internal/announce/bgp"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/model"
)

// BGPSessions is the BGP adapter as the status writer reads it.
type BGPSessions interface {
	Sessions() []bgp.SessionState
	Changes() <-chan struct{}
}

var _ BGPSessions = (*bgp.Speaker)(nil)

// Event reasons on BGPPeer objects (on the ConfigMap for peers defined
// there). Events go on the BGPPeer, not on the Node: the peer is what the
// user configured and looks at when a session fails, and its events then
// show every node's view of that router; the message names the node.
const (
	ReasonBGPSessionEstablished = "BGPSessionEstablished"
	ReasonBGPSessionDown        = "BGPSessionDown"
	ReasonBGPPeerNotConfigured  = "BGPPeerNotConfigured"
)

// BGPStatusWriter keeps, for this node, one BGPSessionStatus per peer and
// one ServiceBGPStatus per Service announced, the BGP metrics, and the
// session events, in line with the speaker and the loop's desired state.
// It writes in the background, so routes never wait for the API server;
// session states and Service statuses are written by two separate
// goroutines, so a thousand Service statuses do not delay a session's.
type BGPStatusWriter struct {
	Client    kube.Client
	Recorder  kube.EventRecorder
	Namespace string
	NodeName  string
	Sessions  BGPSessions
	// BFD, when set, gives the BFD state of the sessions that have one.
	BFD     interface{ States() []bfd.SessionState }
	Metrics *metrics.BGP // nil: none
	Log     logr.Logger
	// Owner returns the owner reference to this node's Node, nil while it
	// is not known.
	Owner func() *metav1.OwnerReference

	// RouteRefresh is how long a change of routes alone (prefix counts)
	// may wait before the sessions' statuses and metrics show it;
	// changes within it are written once. A session's state and a
	// change of peers are written at once. 0: DefaultRouteRefresh.
	RouteRefresh time.Duration

	mu        sync.Mutex
	peers     map[string]peerView
	services  map[model.ServiceKey]BGPServiceRoutes
	kickPeer  chan struct{}
	laterPeer chan struct{}
	kickSvc   chan struct{}

	// Owned by the sessions goroutine.
	seen    map[string]seenSession
	updates map[string]uint64
}

// peerView is what the status writer knows of a desired peer.
type peerView struct {
	addr    netip.Addr
	source  model.Source
	problem string // why it is not configured; "" when it is
}

type seenSession struct {
	state   bgp.State
	problem string
}

// NewBGPStatusWriter returns a writer; run it with Start.
func NewBGPStatusWriter(c kube.Client, rec kube.EventRecorder, ns, node string, sessions BGPSessions, m *metrics.BGP, log logr.Logger) *BGPStatusWriter {
	return &BGPStatusWriter{
		Client: c, Recorder: rec, Namespace: ns, NodeName: node, Sessions: sessions, Metrics: m, Log: log,
		kickPeer: make(chan struct{}, 1), laterPeer: make(chan struct{}, 1), kickSvc: make(chan struct{}, 1),
		seen: map[string]seenSession{}, updates: map[string]uint64{},
	}
}

// Set takes the loop's desired state and the peers it could not
// configure (name -> why). It never blocks.
func (w *BGPStatusWriter) Set(d BGPDesired, problems map[string]string) {
	peers := make(map[string]peerView, len(d.Sessions))
	for _, s := range d.Sessions {
		peers[s.Peer.Name] = peerView{addr: s.Peer.Addr, source: s.Peer.Source, problem: problems[s.Peer.Name]}
	}
	w.mu.Lock()
	peersChanged := !maps.Equal(peers, w.peers)
	svcsChanged := !maps.EqualFunc(d.Services, w.services, func(a, b BGPServiceRoutes) bool {
		return slices.Equal(a.Prefixes, b.Prefixes) && slices.Equal(a.Peers, b.Peers)
	}) || w.services == nil
	w.peers = peers
	w.services = d.Services
	w.mu.Unlock()
	// Prefix counts change with the routes: refresh the sessions too,
	// within RouteRefresh (reading the counts from GoBGP walks its
	// routes, and each count written is an API request: a burst of new
	// Services costs a few refreshes, not one per Service).
	if peersChanged {
		notifyChan(w.kickPeer)
	} else if svcsChanged {
		notifyChan(w.laterPeer)
	}
	if svcsChanged || peersChanged {
		notifyChan(w.kickSvc)
	}
}

// KickSessions makes the sessions' statuses be written again (a BFD
// session changed).
func (w *BGPStatusWriter) KickSessions() { notifyChan(w.kickPeer) }

// Waiting returns whether the writer has had the loop's desired state
// (Set) and the sessions of it not established yet, by peer name, less
// those the loop could not configure.
func (w *BGPStatusWriter) Waiting() (known bool, waiting []string) {
	w.mu.Lock()
	peers := w.peers
	w.mu.Unlock()
	if peers == nil {
		return false, nil
	}
	states := map[string]bgp.SessionState{}
	for _, s := range w.Sessions.Sessions() {
		states[s.Peer] = s
	}
	for name, pv := range peers {
		if pv.problem == "" && states[name].State != bgp.StateEstablished {
			waiting = append(waiting, name)
		}
	}
	return true, waiting
}

// DefaultRouteRefresh is BGPStatusWriter.RouteRefresh's default.
const DefaultRouteRefresh = time.Second

func notifyChan(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Start writes until ctx ends, retrying failed writes.
func (w *BGPStatusWriter) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	refresh := w.RouteRefresh
	if refresh <= 0 {
		refresh = DefaultRouteRefresh
	}
	wg.Go(func() {
		w.loop(ctx, w.kickPeer, w.Sessions.Changes(), w.laterPeer, refresh, w.syncSessions, "BGPSessionStatus")
	})
	wg.Go(func() { w.loop(ctx, w.kickSvc, nil, nil, 0, w.syncServices, "ServiceBGPStatus") })
	wg.Wait()
	return nil
}

// loop syncs at once on kicks and changes, within delay of a kick on
// later, and 2 s after a failed sync. After a change it syncs once more
// delay later (a session that just came up is still sending its routes,
// so its prefix count is not final yet).
func (w *BGPStatusWriter) loop(ctx context.Context, kicks, changes, later <-chan struct{}, delay time.Duration,
	sync func(context.Context) error, what string) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	pending := time.NewTimer(time.Hour)
	pending.Stop()
	armed := false
	arm := func() {
		if !armed {
			pending.Reset(delay)
			armed = true
		}
	}
	for {
		again := false
		select {
		case <-ctx.Done():
			return
		case <-kicks:
		case <-changes:
			again = true
		case <-retry.C:
		case <-pending.C:
		case <-later:
			arm()
			continue
		}
		// This sync covers a pending refresh.
		pending.Stop()
		armed = false
		if again {
			arm()
		}
		if err := sync(ctx); err != nil && ctx.Err() == nil {
			w.Log.Error(err, "writing "+what)
			retry.Reset(2 * time.Second)
		}
	}
}

// BGPSessionStatusName is the name of the BGPSessionStatus of a node and
// peer: "<node>-<peer>", shortened with a hash when too long for a name.
func BGPSessionStatusName(node, peer string) string {
	return objectName(node+"-"+peer, node+"/"+peer)
}

// syncSessions updates the metrics, sends events on session changes and
// writes the BGPSessionStatus objects.
func (w *BGPStatusWriter) syncSessions(ctx context.Context) error {
	w.mu.Lock()
	peers := w.peers
	w.mu.Unlock()
	if peers == nil {
		// Before the first pass the peers are not known, not none: the
		// objects of the last run stay until then.
		return nil
	}
	states := map[string]bgp.SessionState{}
	for _, s := range w.Sessions.Sessions() {
		states[s.Peer] = s
	}

	bfdStates := map[string]string{}
	if w.BFD != nil {
		for _, s := range w.BFD.States() {
			if pv, ok := peers[s.Peer]; ok && pv.addr == s.Address {
				bfdStates[s.Peer] = s.State.String()
			}
		}
	}
	w.metrics(peers, states, bfdStates)
	for name, pv := range peers {
		st, ok := states[name]
		if !ok {
			st = bgp.SessionState{State: bgp.StateIdle}
		}
		prev, seen := w.seen[name]
		w.seen[name] = seenSession{state: st.State, problem: pv.problem}
		switch {
		case pv.problem != "" && pv.problem != prev.problem:
			w.event(ctx, name, pv.source, corev1.EventTypeWarning, ReasonBGPPeerNotConfigured, "node %s: %s", w.NodeName, pv.problem)
		case st.State == bgp.StateEstablished && (!seen || prev.state != bgp.StateEstablished):
			w.event(ctx, name, pv.source, corev1.EventTypeNormal, ReasonBGPSessionEstablished, "node %s: session with %s established", w.NodeName, pv.addr)
		case prev.state == bgp.StateEstablished && st.State != bgp.StateEstablished:
			w.event(ctx, name, pv.source, corev1.EventTypeWarning, ReasonBGPSessionDown, "node %s: session with %s down (%s): %s", w.NodeName, pv.addr, st.State, st.LastError)
		}
	}
	for name := range w.seen {
		if _, ok := peers[name]; !ok {
			delete(w.seen, name)
		}
	}

	var have v1beta1.BGPSessionStatusList
	if err := w.Client.List(ctx, &have, kube.InNamespace(w.Namespace), kube.MatchingLabels(nodeLabels(w.NodeName))); err != nil {
		return fmt.Errorf("list BGPSessionStatus: %w", err)
	}
	existing := map[string]*v1beta1.BGPSessionStatus{}
	for i := range have.Items {
		existing[have.Items[i].Name] = &have.Items[i]
	}
	var firstErr error
	keep := map[string]bool{}
	owner := ownerOf(w.Owner)
	for name, pv := range peers {
		st, ok := states[name]
		if !ok {
			st = bgp.SessionState{State: bgp.StateIdle}
		}
		want := v1beta1.BGPSessionStatusStatus{
			Node: w.NodeName, Peer: name, PeerAddress: pv.addr.String(), State: v1beta1.BGPSessionState(st.State), PeerASN: st.PeerASN, BFDState: bfdStates[name],
			AdvertisedPrefixes: int32(st.PrefixesSent), Message: st.LastError,
		}
		if !st.Since.IsZero() {
			want.LastTransitionTime = metav1.NewTime(st.Since.Truncate(time.Second))
		}
		if pv.problem != "" {
			want.Message = pv.problem
		}
		objName := BGPSessionStatusName(w.NodeName, name)
		keep[objName] = true
		fresh := func() *v1beta1.BGPSessionStatus {
			return &v1beta1.BGPSessionStatus{ObjectMeta: statusMeta(w.Namespace, objName, w.NodeName, owner, model.ServiceKey{})}
		}
		set := func(o *v1beta1.BGPSessionStatus) { o.Status = want }
		obj, cached := existing[objName]
		if cached && ownerMissing(obj, owner) {
			cached = !replaced(ctx, w.Client, obj, &firstErr)
		}
		if !cached {
			obj = fresh()
			if err := w.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				firstErr = keepFirst(firstErr, err)
				continue
			}
		} else if sessionStatusEqual(obj.Status, want) {
			continue
		}
		err := patchStatus(ctx, w.Client, obj, set)
		if cached {
			err = recreateIfGone(ctx, w.Client, err, fresh(), set)
		}
		if err != nil {
			firstErr = keepFirst(firstErr, err)
		}
	}
	for name, obj := range existing {
		if !keep[name] {
			if err := w.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				firstErr = keepFirst(firstErr, err)
			}
		}
	}
	return firstErr
}

func sessionStatusEqual(a, b v1beta1.BGPSessionStatusStatus) bool {
	return a.Node == b.Node && a.Peer == b.Peer && a.PeerAddress == b.PeerAddress && a.State == b.State && a.PeerASN == b.PeerASN && a.BFDState == b.BFDState &&
		a.LastTransitionTime.Equal(&b.LastTransitionTime) && a.AdvertisedPrefixes == b.AdvertisedPrefixes && a.Message == b.Message
}

// metrics sets the per-peer metrics and drops those of peers gone.
func (w *BGPStatusWriter) metrics(peers map[string]peerView, states map[string]bgp.SessionState, bfdStates map[string]string) {
	if w.Metrics == nil {
		return
	}
	for name := range peers {
		if st, ok := bfdStates[name]; ok {
			up := 0.0
			if st == "Up" {
				up = 1
			}
			w.Metrics.BFDSessionUp.WithLabelValues(name).Set(up)
		} else {
			w.Metrics.BFDSessionUp.DeleteLabelValues(name)
		}
		st := states[name]
		up := 0.0
		if st.State == bgp.StateEstablished {
			up = 1
		}
		w.Metrics.SessionUp.WithLabelValues(name).Set(up)
		w.Metrics.AnnouncedPrefixes.WithLabelValues(name).Set(float64(st.PrefixesSent))
		// GoBGP counts per configured peer; a re-created peer starts
		// again from 0.
		last, ok := w.updates[name]
		switch {
		case !ok || st.UpdatesSent < last:
			w.Metrics.UpdatesSent.WithLabelValues(name).Add(float64(st.UpdatesSent))
		default:
			w.Metrics.UpdatesSent.WithLabelValues(name).Add(float64(st.UpdatesSent - last))
		}
		w.updates[name] = st.UpdatesSent
	}
	for name := range w.updates {
		if _, ok := peers[name]; !ok {
			delete(w.updates, name)
			w.Metrics.SessionUp.DeleteLabelValues(name)
			w.Metrics.AnnouncedPrefixes.DeleteLabelValues(name)
			w.Metrics.UpdatesSent.DeleteLabelValues(name)
			w.Metrics.BFDSessionUp.DeleteLabelValues(name)
		}
	}
}

// event records an event on the BGPPeer (or, for a peer from the legacy
// ConfigMap, on the ConfigMap).
func (w *BGPStatusWriter) event(ctx context.Context, peer string, src model.Source, typ, reason, format string, args ...any) {
	if w.Recorder == nil {
		return
	}
	var obj kube.Object = &v1beta1.BGPPeer{}
	key := types.NamespacedName{Namespace: w.Namespace, Name: peer}
	if src == model.SourceConfigMap {
		obj = &corev1.ConfigMap{}
		key.Name = v1beta1.LegacyConfigMapName
	}
	if err := w.Client.Get(ctx, key, obj); err != nil {
		return
	}
	w.Recorder.Eventf(obj, typ, reason, format, args...)
}

// syncServices writes one ServiceBGPStatus per Service this node
// announces and deletes the others of this node.
func (w *BGPStatusWriter) syncServices(ctx context.Context) error {
	w.mu.Lock()
	services := w.services
	w.mu.Unlock()

	var have v1beta1.ServiceBGPStatusList
	if err := w.Client.List(ctx, &have, kube.InNamespace(w.Namespace), kube.MatchingLabels(nodeLabels(w.NodeName))); err != nil {
		return fmt.Errorf("list ServiceBGPStatus: %w", err)
	}
	existing := map[string]*v1beta1.ServiceBGPStatus{}
	for i := range have.Items {
		existing[have.Items[i].Name] = &have.Items[i]
	}
	var firstErr error
	keep := map[string]bool{}
	owner := ownerOf(w.Owner)
	for key, sr := range services {
		want := v1beta1.ServiceBGPStatusStatus{Node: w.NodeName, ServiceName: key.Name, ServiceNamespace: key.Namespace, Peers: sr.Peers}
		for _, p := range sr.Prefixes {
			want.Prefixes = append(want.Prefixes, p.String())
		}
		// The same naming as ServiceL2Status: node and a hash of the
		// Service.
		name := L2StatusName(w.NodeName, key)
		keep[name] = true
		fresh := func() *v1beta1.ServiceBGPStatus {
			return &v1beta1.ServiceBGPStatus{ObjectMeta: statusMeta(w.Namespace, name, w.NodeName, owner, key)}
		}
		set := func(o *v1beta1.ServiceBGPStatus) { o.Status = want }
		obj, cached := existing[name]
		if cached && ownerMissing(obj, owner) {
			cached = !replaced(ctx, w.Client, obj, &firstErr)
		}
		if !cached {
			obj = fresh()
			if err := w.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				firstErr = keepFirst(firstErr, err)
				continue
			}
		} else if serviceStatusEqual(obj.Status, want) {
			continue
		}
		err := patchStatus(ctx, w.Client, obj, set)
		if cached {
			err = recreateIfGone(ctx, w.Client, err, fresh(), set)
		}
		if err != nil {
			firstErr = keepFirst(firstErr, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	for name, obj := range existing {
		if !keep[name] {
			if err := w.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				firstErr = keepFirst(firstErr, err)
			}
		}
	}
	return firstErr
}

func serviceStatusEqual(a, b v1beta1.ServiceBGPStatusStatus) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Prefixes, b.Prefixes) && slices.Equal(a.Peers, b.Peers)
}
