package bgp

import (
	"net/netip"
	"time"

	"github.com/herald-lb/herald/internal/model"
)

// Desired is the whole BGP state a node wants.
type Desired struct {
	// RouterID is the BGP identifier (an IPv4 address); required when
	// there are peers.
	RouterID netip.Addr
	// Peers are the sessions to have, each with its routes. Addresses must
	// be distinct.
	Peers []Peer
}

// Peer is one BGP session and what is sent on it.
type Peer struct {
	// Name identifies the peer in Sessions (the BGPPeer name).
	Name    string
	Address netip.Addr
	// Port is the peer's TCP port (179 when 0).
	Port           uint16
	MyASN, PeerASN uint32
	// DynamicASN, with PeerASN 0, accepts a router of any AS but MyASN
	// (learned from its OPEN). A router of AS MyASN has its session shut
	// down with a NOTIFICATION and retried after RefuseRetry.
	DynamicASN bool
	// SourceAddress is the local address of the session (any when
	// invalid).
	SourceAddress netip.Addr
	HoldTime      time.Duration
	// KeepaliveTime 0 means a third of HoldTime.
	KeepaliveTime time.Duration
	// ConnectTime is the time between connection attempts (10s when 0;
	// GoBGP's minimum is 1s).
	ConnectTime time.Duration
	// Password enables TCP MD5 authentication.
	Password string
	// EBGPMultiHop lets an eBGP session cross routers (TTL 255 instead
	// of 1).
	EBGPMultiHop bool
	// GracefulRestart advertises the graceful-restart capability for both
	// families (restart time 120s).
	GracefulRestart bool
	// Routes sent to this peer; a prefix at most once.
	Routes []Route
}

// Route is a prefix and the attributes it is sent with to one peer.
type Route struct {
	Prefix netip.Prefix
	// NextHop of the route; invalid means the session's local address.
	NextHop     netip.Addr
	Communities []model.Community
	// LocalPref is sent to iBGP peers; 0 means GoBGP's default (100).
	LocalPref uint32
}

// State is a BGP session state, named as in RFC 4271.
type State string

// Session states.
const (
	StateUnknown     State = "Unknown"
	StateIdle        State = "Idle"
	StateConnect     State = "Connect"
	StateActive      State = "Active"
	StateOpenSent    State = "OpenSent"
	StateOpenConfirm State = "OpenConfirm"
	StateEstablished State = "Established"
)

// SessionState is what the speaker knows of one session.
type SessionState struct {
	Peer    string
	Address netip.Addr
	State   State
	// PeerASN is the AS number of the router's OPEN, once the session
	// was established; 0 before.
	PeerASN uint32
	// Since is when State was entered (when the peer was added, if it
	// never changed).
	Since time.Time
	// PrefixesSent is the number of prefixes GoBGP advertises to the
	// peer (after the export policy); 0 unless Established.
	PrefixesSent int
	// UpdatesSent counts UPDATE messages sent on this peer since it was
	// configured.
	UpdatesSent uint64
	// LastError says why the session last went down or failed to be
	// configured; empty if it never did.
	LastError string
}
