package lab

import (
	"fmt"
	"net/netip"
	"regexp"
)

// The lab's fixed network plan. Every address is in a private test range
// and lives only inside the lab's namespaces; nothing is routed out of them.
// The one link to the root namespace is a point-to-point veth to the API
// namespace (MgmtHost/MgmtAPI), so that tests and kubectl on the machine
// reach the API server; forwarding is off in the API namespace, so the root
// namespace never reaches the node segment through it.
const (
	// NetnsPrefix starts the name of every namespace the lab creates.
	NetnsPrefix = "herald-"

	NetnsSwitch   = "herald-sw"
	NetnsAPI      = "herald-api"
	NetnsRouter   = "herald-rtr"
	NetnsClient   = "herald-client"
	NetnsL2Client = "herald-l2client"

	// BridgeName is the node segment's bridge, inside NetnsSwitch.
	BridgeName = "br0"
	// MgmtLinkHost is the root namespace's end of the management veth.
	MgmtLinkHost = "herald-mgmt"
	mgmtLinkAPI  = "mgmt0"

	// RouterASN is FRR's AS; NodeASN is the AS the router expects the
	// nodes (Herald's speakers, eBGP) to use.
	RouterASN uint32 = 64512
	NodeASN   uint32 = 64513

	// APIPort is kube-apiserver's secure port.
	APIPort = 6443
	// MemberlistPort, MetricsPort, HealthPort are the speaker's (and the
	// controller's) ports; ProxyHealthPort is the kube-proxy stand-in's.
	MemberlistPort  = 7946
	MetricsPort     = 7472
	HealthPort      = 7473
	ProxyHealthPort = 7480

	// MaxNodes bounds the node count so node addresses stay below the
	// clients' and the pools'.
	MaxNodes = 50
)

// Addresses of the fixed hosts. Segment = the nodes' layer-2 segment.
var (
	SegmentV4 = netip.MustParsePrefix("172.31.255.0/24")
	SegmentV6 = netip.MustParsePrefix("fd00:31::/64")
	RoutedV4  = netip.MustParsePrefix("172.31.254.0/24")
	RoutedV6  = netip.MustParsePrefix("fd00:32::/64")

	RouterV4       = netip.MustParseAddr("172.31.255.1")
	RouterV6       = netip.MustParseAddr("fd00:31::1")
	RouterRoutedV4 = netip.MustParseAddr("172.31.254.1")
	RouterRoutedV6 = netip.MustParseAddr("fd00:32::1")
	APIV4          = netip.MustParseAddr("172.31.255.2")
	APIV6          = netip.MustParseAddr("fd00:31::2")
	L2ClientV4     = netip.MustParseAddr("172.31.255.100")
	L2ClientV6     = netip.MustParseAddr("fd00:31::100")
	ClientV4       = netip.MustParseAddr("172.31.254.2")
	ClientV6       = netip.MustParseAddr("fd00:32::2")

	MgmtHost = netip.MustParsePrefix("172.31.253.1/30")
	MgmtAPI  = netip.MustParsePrefix("172.31.253.2/30")

	// ServiceCIDRs is the API server's Service ClusterIP ranges.
	ServiceCIDRs = "10.96.0.0/16,fd00:96::/112"
)

// Range is an inclusive range of addresses per family, as an
// IPAddressPool takes them.
type Range struct {
	V4First, V4Last netip.Addr
	V6First, V6Last netip.Addr
}

// Addresses returns the range in IPAddressPool syntax.
func (r Range) Addresses() []string {
	var out []string
	if r.V4First.IsValid() {
		out = append(out, r.V4First.String()+"-"+r.V4Last.String())
	}
	if r.V6First.IsValid() {
		out = append(out, r.V6First.String()+"-"+r.V6Last.String())
	}
	return out
}

// Contains reports whether a is in the range.
func (r Range) Contains(a netip.Addr) bool {
	in := func(first, last netip.Addr) bool {
		return first.IsValid() && a.Compare(first) >= 0 && a.Compare(last) <= 0
	}
	return in(r.V4First, r.V4Last) || in(r.V6First, r.V6Last)
}

// AddressPlan are the address ranges a driver gives the suite: pools on the
// nodes' segment (announced over layer 2, reachable from both clients
// through the router's connected route) and a pool off every segment that
// only BGP can make reachable.
type AddressPlan struct {
	// Main is the suite's default auto-assigned pool.
	Main Range
	// Gold is a pool the suite marks autoAssign=false.
	Gold Range
	// Spare is for scenarios that create and break their own pools.
	Spare Range
	// BGP is routed only by BGP announcements.
	BGP Range
	// Demo is the pool `lab demo` applies.
	Demo Range
}

func rng(v4a, v4b, v6a, v6b string) Range {
	return Range{
		V4First: netip.MustParseAddr(v4a), V4Last: netip.MustParseAddr(v4b),
		V6First: netip.MustParseAddr(v6a), V6Last: netip.MustParseAddr(v6b),
	}
}

// NetnsPlan is the address plan of the netns lab.
var NetnsPlan = AddressPlan{
	Main:  rng("172.31.255.150", "172.31.255.169", "fd00:31::150", "fd00:31::169"),
	Gold:  rng("172.31.255.170", "172.31.255.179", "fd00:31::170", "fd00:31::179"),
	Spare: rng("172.31.255.180", "172.31.255.189", "fd00:31::180", "fd00:31::189"),
	BGP:   rng("172.31.250.10", "172.31.250.30", "fd00:33::10", "fd00:33::30"),
	Demo:  rng("172.31.255.200", "172.31.255.250", "fd00:31::200", "fd00:31::250"),
}

// Node is one lab node: a network namespace standing in for a machine.
type Node struct {
	Name  string     `json:"name"`
	Netns string     `json:"netns"`
	IPv4  netip.Addr `json:"ipv4"`
	IPv6  netip.Addr `json:"ipv6"`
	MAC   string     `json:"mac"`
}

// nodePlan returns the plan of node i (1-based).
func nodePlan(i int) Node {
	name := fmt.Sprintf("n%d", i)
	return Node{
		Name:  name,
		Netns: NetnsPrefix + name,
		IPv4:  netip.AddrFrom4([4]byte{172, 31, 255, byte(10 + i)}),
		IPv6:  netip.MustParseAddr(fmt.Sprintf("fd00:31::%d", 10+i)),
		MAC:   fmt.Sprintf("02:48:4c:00:01:%02x", i),
	}
}

// nodeNetnsRE matches node namespaces of any lab size, so Down finds them
// even when the state file is gone.
var nodeNetnsRE = regexp.MustCompile(`^herald-n[0-9]+$`)

// isLabNetns reports whether a namespace name is one the lab creates.
func isLabNetns(name string) bool {
	switch name {
	case NetnsSwitch, NetnsAPI, NetnsRouter, NetnsClient, NetnsL2Client:
		return true
	}
	return nodeNetnsRE.MatchString(name)
}
