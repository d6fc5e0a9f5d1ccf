package speaker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/internal/announce/bgp"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/model"
	"github.com/herald-lb/herald/internal/servicereq"
)

// BGPSpeaker is the BGP adapter as the loop drives it.
type BGPSpeaker interface {
	Reconcile(ctx context.Context, d bgp.Desired) error
}

var _ BGPSpeaker = (*bgp.Speaker)(nil)

// BGPLoop computes this node's BGP sessions and routes from the API
// server's state and drives the speaker to them. Like L2Loop it runs under
// a single key: every change recomputes the whole set, and the speaker
// applies only the difference.
type BGPLoop struct {
	// IgnoreExcludeLB: nodes with the exclude-from-external-load-balancers
	// label announce too (--ignore-exclude-lb).
	IgnoreExcludeLB bool
	Client          kube.Reader
	Namespace       string
	NodeName        string
	Class           servicereq.Class
	Speaker         BGPSpeaker
	// BFD runs the sessions of peers with a BFDProfile (nil: none).
	BFD    BFDSessions
	Status *BGPStatusWriter // nil: no status objects
	Log    logr.Logger
	// ServiceStore, when set, is read for the Services (see L2Loop).
	ServiceStore interface{ List() []any }

	mu           sync.Mutex
	config       lastGoodConfig
	lastProblems []string

	// passMu serializes Prestart and Reconcile; passed is set when the
	// first full pass starts (Prestart has nothing left to do then).
	passMu sync.Mutex
	passed bool

	// lastEnd and lastTook (UnixNano, nanoseconds) time the last pass
	// (BatchDelay).
	lastEnd, lastTook atomic.Int64
}

var _ Pass = (*BGPLoop)(nil)

// bgpBatchFactor: in a stream of API events a pass waits until the last
// one's duration times this has passed since it ended, so passes take
// at most about a fifth of a core at any scale.
const bgpBatchFactor = 4

// BatchDelay is how long an API event waits for its pass: nothing when
// the last pass ended long enough ago (a Service created alone is routed
// at once); otherwise until bgpBatchFactor times its duration has passed
// since it ended, and the events meanwhile share one pass.
func (l *BGPLoop) BatchDelay() time.Duration {
	return batchWait(time.Now(), time.Unix(0, l.lastEnd.Load()), time.Duration(l.lastTook.Load()), bgpBatchFactor)
}

// batchWait is the wait at now after a pass that ended at end and took
// took: until end + factor × took, never negative.
func batchWait(now, end time.Time, took time.Duration, factor int) time.Duration {
	return max(end.Add(time.Duration(factor)*took).Sub(now), 0)
}

// PasswordSecretKey is the key of a BGPPeer's passwordSecret holding the
// password (a kubernetes.io/basic-auth Secret).
const PasswordSecretKey = "password"

// Reconcile recomputes everything and hands it to the speaker.
func (l *BGPLoop) Reconcile(ctx context.Context) (time.Duration, error) {
	l.passMu.Lock()
	defer l.passMu.Unlock()
	start := time.Now()
	defer func() {
		end := time.Now()
		l.lastTook.Store(int64(end.Sub(start)))
		l.lastEnd.Store(end.UnixNano())
	}()
	l.passed = true
	in, err := l.input(ctx, true)
	if err != nil {
		return 0, err
	}
	desired := ComputeBGP(in)
	l.logProblems(desired.Problems)

	d, problems := l.speakerDesired(ctx, desired)
	err = l.Speaker.Reconcile(ctx, d)
	// BFD after BGP: the router opens the BGP session the moment BFD is
	// up (FRR does), which may be milliseconds after its start; a peer not
	// yet configured would refuse that connection, and the router would
	// try again only after its connect timer.
	l.reconcileBFD(desired, problems)
	if l.Status != nil {
		l.Status.Set(desired, problems)
	}
	if errors.Is(err, bgp.ErrStopped) {
		return 0, nil // shutting down
	}
	if err != nil {
		return 0, fmt.Errorf("bgp: %w", err)
	}
	return 0, nil
}

// Prestart brings the sessions up before the Services are read (at
// 10,000 Services their lists take seconds to arrive; a BGP session
// takes a second or two to open): the peers of the configuration as it
// stands, announcing nothing yet. It needs the configuration, the Nodes
// and the Secrets in the cache; the first full pass adds the routes, and
// after it Prestart does nothing. A peer with graceful restart waits for
// that pass: the End-of-RIB that follows the opening would tell its
// router that this node has no routes.
func (l *BGPLoop) Prestart(ctx context.Context) error {
	l.passMu.Lock()
	defer l.passMu.Unlock()
	if l.passed {
		return nil
	}
	in, err := l.input(ctx, false)
	if err != nil {
		return err
	}
	desired := ComputeBGP(in)
	d, problems := l.speakerDesired(ctx, desired) // the pass reports problems
	waiting := map[string]string{}
	d.Peers = slices.DeleteFunc(d.Peers, func(p bgp.Peer) bool {
		if p.GracefulRestart {
			waiting[p.Name] = "waits for the first pass"
		}
		return p.GracefulRestart
	})
	if len(d.Peers) == 0 {
		return nil
	}
	if err := l.Speaker.Reconcile(ctx, d); err != nil && !errors.Is(err, bgp.ErrStopped) {
		return err
	}
	// BFD only for the peers configured now, after them (see Reconcile).
	maps.Copy(waiting, problems)
	l.reconcileBFD(desired, waiting)
	return nil
}

// reconcileBFD sets the BFD sessions of the desired BGP sessions.
func (l *BGPLoop) reconcileBFD(desired BGPDesired, problems map[string]string) {
	if l.BFD == nil {
		return
	}
	if err := l.BFD.Reconcile(bfdPeers(desired, problems)); err != nil {
		l.Log.Error(err, "BFD sessions")
	}
}

// speakerDesired turns desired into the speaker's terms; the sessions it
// cannot configure are left out, with why, by peer name.
func (l *BGPLoop) speakerDesired(ctx context.Context, desired BGPDesired) (bgp.Desired, map[string]string) {
	d := bgp.Desired{RouterID: desired.RouterID}
	problems := map[string]string{}
	for _, s := range desired.Sessions {
		p, err := l.peer(ctx, s)
		if err != nil {
			problems[s.Peer.Name] = err.Error()
			continue
		}
		d.Peers = append(d.Peers, p)
	}
	return d, problems
}

// peer turns a session into the speaker's terms, reading the password
// from its Secret.
func (l *BGPLoop) peer(ctx context.Context, s BGPSession) (bgp.Peer, error) {
	mp := s.Peer
	p := bgp.Peer{
		Name: mp.Name, Address: mp.Addr, Port: mp.Port, MyASN: mp.MyASN, PeerASN: mp.ASN, DynamicASN: mp.Dynamic != "",
		SourceAddress: mp.SrcAddr, HoldTime: mp.HoldTime, KeepaliveTime: mp.KeepaliveTime,
		ConnectTime: mp.ConnectTime, Password: mp.Password, EBGPMultiHop: mp.EBGPMultiHop,
		GracefulRestart: mp.GracefulRestart,
	}
	if ref := mp.PasswordSecret; ref != nil {
		var sec corev1.Secret
		err := l.Client.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, &sec)
		switch {
		case apierrors.IsNotFound(err):
			return p, fmt.Errorf("passwordSecret %s/%s not found", ref.Namespace, ref.Name)
		case err != nil:
			return p, fmt.Errorf("read passwordSecret %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		pw, ok := sec.Data[PasswordSecretKey]
		if !ok {
			return p, fmt.Errorf("passwordSecret %s/%s has no %q key", ref.Namespace, ref.Name, PasswordSecretKey)
		}
		p.Password = string(pw)
	}
	for _, r := range s.Routes {
		p.Routes = append(p.Routes, bgp.Route{Prefix: r.Prefix, NextHop: r.NextHop, Communities: r.Communities, LocalPref: r.LocalPref})
	}
	return p, nil
}

// logProblems logs the configuration this node cannot act on, when it
// changes.
func (l *BGPLoop) logProblems(problems []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Equal(problems, l.lastProblems) {
		return
	}
	l.lastProblems = problems
	for _, p := range problems {
		l.Log.Info("BGP configuration ignored on this node", "node", l.NodeName, "problem", p)
	}
}

// readNodes reads the Nodes, and this node's addresses, into in.
func (l *BGPLoop) readNodes(ctx context.Context, in *BGPInput) error {
	var nodes corev1.NodeList
	if err := l.Client.List(ctx, &nodes); err != nil {
		return fmt.Errorf("list Nodes: %w", err)
	}
	in.Nodes = make(map[string]Node, len(nodes.Items))
	for i := range nodes.Items {
		n := &nodes.Items[i]
		in.Nodes[n.Name] = nodeFrom(n, l.IgnoreExcludeLB)
		if n.Name != l.NodeName {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				in.NodeAddrs = append(in.NodeAddrs, ip.Unmap())
			}
		}
	}
	return nil
}

// input reads the cache into a BGPInput; without services, only the
// configuration and the Nodes (Prestart). The configuration is the last
// one that validated: a bad configuration never stops announcements.
func (l *BGPLoop) input(ctx context.Context, services bool) (BGPInput, error) {
	in := BGPInput{NodeName: l.NodeName}
	var err error
	if in.Config, err = l.config.load(ctx, l.Client, l.Namespace, l.Log); err != nil {
		return in, err
	}
	if in.Config == nil || len(in.Config.Peers) == 0 {
		return in, nil // no BGP: nothing else matters
	}
	if !services {
		return in, l.readNodes(ctx, &in)
	}

	if in.Services, err = announcedServices(ctx, l.Client, l.ServiceStore, l.Class); err != nil {
		return in, fmt.Errorf("list Services: %w", err)
	}

	if err := l.readNodes(ctx, &in); err != nil {
		return in, err
	}

	// Only Local Services need endpoints, and only this node's.
	local := map[model.ServiceKey]bool{}
	for _, s := range in.Services {
		if s.Local {
			local[s.Key] = true
		}
	}
	in.Endpoints = map[model.ServiceKey]map[string]bool{}
	if len(local) == 0 {
		return in, nil
	}
	var eps discoveryv1.EndpointSliceList
	if err := l.Client.List(ctx, &eps); err != nil {
		return in, fmt.Errorf("list EndpointSlices: %w", err)
	}
	for key, nodes := range ServingNodes(eps.Items) {
		if local[key] && nodes[l.NodeName] {
			in.Endpoints[key] = map[string]bool{l.NodeName: true}
		}
	}
	return in, nil
}
