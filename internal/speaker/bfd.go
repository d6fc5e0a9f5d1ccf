package speaker

import (
	"context"
	"net/netip"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/internal/announce/bfd"
	fsm "github.com/herald-lb/herald/internal/bfd"
)

// BFDSessions is the BFD adapter as the speaker drives and reads it.
type BFDSessions interface {
	Reconcile(peers []bfd.Peer) error
	States() []bfd.SessionState
	Changes() <-chan struct{}
}

var _ BFDSessions = (*bfd.Manager)(nil)

// bfdPeers returns the BFD sessions of the desired BGP sessions whose peer
// names a BFDProfile, less those the speaker could not configure
// (problems, by peer name).
func bfdPeers(d BGPDesired, problems map[string]string) []bfd.Peer {
	var out []bfd.Peer
	for _, s := range d.Sessions {
		prof := s.Peer.BFD
		if prof == nil || problems[s.Peer.Name] != "" {
			continue
		}
		out = append(out, bfd.Peer{
			Name: s.Peer.Name, Address: s.Peer.Addr, MultiHop: s.Peer.EBGPMultiHop, MinimumTTL: prof.MinimumTTL,
			Config: fsm.Config{DesiredMinTx: prof.TransmitInterval, RequiredMinRx: prof.ReceiveInterval,
				DetectMult: prof.DetectMultiplier, Passive: prof.Passive},
		})
	}
	return out
}

// BGPResetter closes a BGP session so it connects again.
type BGPResetter interface {
	ResetPeer(ctx context.Context, addr netip.Addr, why string) error
}

// BFDLink resets the BGP session of every BFD session that goes down from
// Up, as a router running BFD does: the path is gone, and the session
// should not wait for its hold time. A session the router takes down on
// purpose (AdminDown) is no failure and resets nothing (RFC 5882).
type BFDLink struct {
	BFD BFDSessions
	BGP BGPResetter
	Log logr.Logger
	// Notify, when set, is called after every change (the status writer
	// shows the BFD states).
	Notify func()

	up map[netip.Addr]bool
}

// Run follows the BFD sessions until ctx ends.
func (l *BFDLink) Run(ctx context.Context) error {
	l.up = map[netip.Addr]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.BFD.Changes():
		}
		for _, addr := range l.failed(l.BFD.States()) {
			why := "BFD session down: " + fsm.DiagTimeExpired.String()
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := l.BGP.ResetPeer(rctx, addr, why); err != nil {
				l.Log.Error(err, "reset the BGP session after BFD went down", "peer", addr.String())
			}
			cancel()
		}
		if l.Notify != nil {
			l.Notify()
		}
	}
}

// failed records the states and returns the addresses whose session went
// from Up to down by a failure.
func (l *BFDLink) failed(states []bfd.SessionState) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range states {
		seen[s.Address] = true
		up := s.State == fsm.StateUp
		if l.up[s.Address] && !up && s.State == fsm.StateDown && s.RemoteState != fsm.StateAdminDown {
			out = append(out, s.Address)
		}
		l.up[s.Address] = up
	}
	for a := range l.up {
		if !seen[a] {
			delete(l.up, a)
		}
	}
	return out
}
