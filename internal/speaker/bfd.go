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
	// Release lets the sessions with addr speak again after a failure.
	Release(addr netip.Addr)
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

// BGPResetter closes a BGP session and starts it over at once, or starts
// an idle one over.
type BGPResetter interface {
	Restart(ctx context.Context, addr netip.Addr, why string) error
	Reconnect(ctx context.Context, addr netip.Addr) error
}

// BFDLink resets the BGP session of every BFD session that goes down from
// Up, as a router running BFD does: the path is gone, and the session
// should not wait for its hold time. It starts the BGP session over at
// once and only then lets the BFD session speak again (the BFD manager
// holds a failed session): a router that opens its BGP session the moment
// BFD is up (FRR does) finds it taking connections. A session the router
// takes down on purpose (AdminDown) is no failure and resets nothing (RFC
// 5882). While
// BFD is up, an idle BGP session starts over at once (when BFD comes up,
// and then every second) instead of after GoBGP's idle time: the session
// may drop just after BFD came back, when the router's NOTIFICATION is
// read.
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
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			for a, up := range l.up {
				if up {
					l.reconnect(ctx, a)
				}
			}
			continue
		case <-l.BFD.Changes():
		}
		failed, back := l.changes(l.BFD.States())
		for _, addr := range failed {
			why := "BFD session down: " + fsm.DiagTimeExpired.String()
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := l.BGP.Restart(rctx, addr, why); err != nil {
				l.Log.Error(err, "reset the BGP session after BFD went down", "peer", addr.String())
			}
			cancel()
			l.BFD.Release(addr)
		}
		for _, addr := range back {
			l.reconnect(ctx, addr)
		}
		if l.Notify != nil {
			l.Notify()
		}
	}
}

// reconnect starts addr's BGP session over if it is idle.
func (l *BFDLink) reconnect(ctx context.Context, addr netip.Addr) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.BGP.Reconnect(rctx, addr); err != nil {
		l.Log.Error(err, "start the idle BGP session over (BFD is up)", "peer", addr.String())
	}
}

// changes records the states and returns the addresses whose session
// went from Up to down by a failure, and those that came up after being
// known down.
func (l *BFDLink) changes(states []bfd.SessionState) (failed, back []netip.Addr) {
	seen := map[netip.Addr]bool{}
	for _, s := range states {
		seen[s.Address] = true
		up := s.State == fsm.StateUp
		was, known := l.up[s.Address]
		switch {
		case was && !up && s.State == fsm.StateDown && s.RemoteState != fsm.StateAdminDown:
			failed = append(failed, s.Address)
		case known && !was && up:
			back = append(back, s.Address)
		}
		l.up[s.Address] = up
	}
	for a := range l.up {
		if !seen[a] {
			delete(l.up, a)
		}
	}
	return failed, back
}
