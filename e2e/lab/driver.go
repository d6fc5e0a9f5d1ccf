package lab

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"syscall"
)

// Hosts every driver knows besides the node names.
const (
	// HostRouter runs FRR; it is on the node segment and routes to
	// HostClient.
	HostRouter = "router"
	// HostClient is the routed client: behind the router, not on the
	// nodes' segment; it reaches Service IPs through the router only.
	HostClient = "client"
	// HostL2Client is a client on the nodes' segment: it resolves Service
	// IPs with ARP and NDP itself.
	HostL2Client = "l2client"
)

// Family is an IP family.
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// FamilyOf returns a's family.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// RouterInfo is what a BGPPeer needs to peer with the driver's router.
type RouterInfo struct {
	ASN     uint32 // the router's AS (peerASN of a BGPPeer)
	NodeASN uint32 // the AS the router expects from nodes (myASN)
	IPv4    netip.Addr
	IPv6    netip.Addr
}

// Driver is everything the end-to-end suite does to the world besides
// talking to the API server through Kubeconfig: run a command on a host,
// break and repair nodes, restart Herald's processes. The netns lab (*Lab)
// and a kind cluster (*Kind) implement it; every method that blocks takes a
// context and returns when the change is done (a restarted process is
// listening again).
type Driver interface {
	// Kubeconfig is a kubeconfig file usable by the suite's process.
	Kubeconfig() string
	// NodeNames are the Kubernetes names of the nodes, sorted.
	NodeNames() []string
	// NodeAddress is a node's InternalIP of family f.
	NodeAddress(node string, f Family) (netip.Addr, error)
	// NodeMAC is the MAC of the node's interface on the client segment.
	NodeMAC(ctx context.Context, node string) (net.HardwareAddr, error)
	// Exec runs argv on host (a node name or a Host* constant) and returns
	// its standard output; a non-zero exit is an error holding stderr.
	Exec(ctx context.Context, host string, argv ...string) ([]byte, error)
	// Command returns a command, not started, that runs argv on host, for
	// callers that read its output while it runs (tcpdump, curl loops).
	// Ending the local process may leave the remote one running on some
	// drivers (docker exec): argv should bound its own run time (e.g.
	// `timeout`).
	Command(ctx context.Context, host string, argv ...string) (*exec.Cmd, error)

	// HasSpeaker reports whether Herald's speaker runs on the nodes.
	HasSpeaker() bool
	// SignalSpeaker sends sig to the node's speaker process.
	SignalSpeaker(ctx context.Context, node string, sig syscall.Signal) error
	// RestartSpeaker makes sure the node runs a fresh speaker: one that
	// was killed is started again, one that runs (or is stopped) is
	// replaced.
	RestartSpeaker(ctx context.Context, node string) error
	// StopController stops Herald's controller and returns once it is
	// gone; StartController starts it and returns once it is healthy.
	StopController(ctx context.Context) error
	StartController(ctx context.Context) error
	// LinkDown and LinkUp take the node's segment interface down and up:
	// a silent failure of the whole node for its peers.
	LinkDown(ctx context.Context, node string) error
	LinkUp(ctx context.Context, node string) error

	// Router describes the BGP router peered with the nodes.
	Router() RouterInfo
	// Vtysh runs a vtysh command on the router.
	Vtysh(ctx context.Context, command string) ([]byte, error)
	// Plan is the address ranges the suite may use.
	Plan() AddressPlan
}

var (
	_ Driver = (*Lab)(nil)
	_ Driver = (*Kind)(nil)
)
