package bgp

import (
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// gracefulRestartTime is the restart time advertised with the
// graceful-restart capability: how long a router keeps this node's
// routes while its speaker restarts.
const gracefulRestartTime = 120 * time.Second

// multiHopTTL is the TTL of an eBGP multi-hop session.
const multiHopTTL = 255

// neighbor is the canonical form of a peer's session settings: two peers
// with equal neighbors need the same GoBGP configuration, so a session is
// re-created exactly when its neighbor changes. Defaults are applied, so
// a default written out is no change.
type neighbor struct {
	addr      netip.Addr
	port      uint16
	myASN     uint32
	peerASN   uint32
	dynamic   bool // peerASN 0: any AS but myASN
	src       netip.Addr
	hold      time.Duration
	keepalive time.Duration
	connect   time.Duration
	password  string
	multiHop  bool
	gr        bool
}

func neighborOf(p Peer) neighbor {
	n := neighbor{
		addr: p.Address.Unmap(), port: p.Port, myASN: p.MyASN, peerASN: p.PeerASN, dynamic: p.DynamicASN && p.PeerASN == 0,
		src: p.SourceAddress.Unmap(), hold: p.HoldTime, keepalive: p.KeepaliveTime, connect: p.ConnectTime,
		password: p.Password, multiHop: p.EBGPMultiHop, gr: p.GracefulRestart,
	}
	if n.port == 0 {
		n.port = 179
	}
	if n.hold == 0 {
		n.hold = 90 * time.Second // what GoBGP does with 0
	}
	if n.keepalive == 0 {
		n.keepalive = (n.hold / 3).Truncate(time.Second)
	}
	if n.connect == 0 {
		n.connect = 10 * time.Second
	}
	n.connect = max(n.connect, time.Second)
	return n
}

// check reports why a peer cannot be configured, or nil.
func (n neighbor) check() error {
	switch {
	case !n.addr.IsValid() || n.addr.IsUnspecified():
		return fmt.Errorf("peer address %v is not usable", n.addr)
	case n.myASN == 0 || (n.peerASN == 0 && !n.dynamic):
		return fmt.Errorf("AS numbers must be set (myASN %d, peerASN %d)", n.myASN, n.peerASN)
	case n.src.IsValid() && n.src.Is4() != n.addr.Is4():
		return fmt.Errorf("source address %s and peer address %s are of different families", n.src, n.addr)
	case len(n.password) > 80:
		return fmt.Errorf("TCP MD5 password longer than 80 bytes")
	}
	return nil
}

// refusedASN is the router AS the session must not have (myASN for a
// dynamic external peer: GoBGP, given peer AS 0, accepts any), or 0.
func (n neighbor) refusedASN() uint32 {
	if n.dynamic {
		return n.myASN
	}
	return 0
}

// apiPeer is the GoBGP configuration of the neighbor. A dynamic peer has
// AS 0, which GoBGP reads as "take the AS of the router's OPEN".
func (n neighbor) apiPeer() *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.addr.String(),
			PeerAsn:         n.peerASN,
			LocalAsn:        n.myASN,
			AuthPassword:    n.password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      uint64(n.connect / time.Second),
			HoldTime:          uint64(n.hold / time.Second),
			KeepaliveInterval: uint64(n.keepalive / time.Second),
			// After a reset GoBGP waits this long before it connects or
			// accepts again (its default is 30 s); Restart does not wait
			// for it.
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{RemotePort: uint32(n.port)},
	}
	if n.src.IsValid() {
		p.Transport.LocalAddress = n.src.String()
	}
	if n.multiHop {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: multiHopTTL}
	}
	if n.gr {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(gracefulRestartTime / time.Second)}
	}
	for _, f := range []*api.Family{familyV4, familyV6} {
		af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if n.gr {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, af)
	}
	return p
}

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// stateOf maps GoBGP's session state to ours.
func stateOf(s api.PeerState_SessionState) State {
	switch s {
	case api.PeerState_IDLE:
		return StateIdle
	case api.PeerState_CONNECT:
		return StateConnect
	case api.PeerState_ACTIVE:
		return StateActive
	case api.PeerState_OPENSENT:
		return StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return StateEstablished
	}
	return StateUnknown
}
