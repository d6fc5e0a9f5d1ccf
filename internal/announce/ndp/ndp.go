package ndp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/internal/responder"
)

// ErrPermission is wrapped by the error Run returns when the raw socket
// cannot be opened for lack of privilege (CAP_NET_RAW).
var ErrPermission = responder.ErrPermission

// ErrStopped is returned by Reconcile once Run has returned.
var ErrStopped = responder.ErrStopped

// Options configure a Responder. Zero values take defaults. OnConflict
// hears at once of a host probing for an owned address (duplicate address
// detection; the answer tells it the address is in use), its MAC unknown:
// the probe does not carry it.
type Options = responder.Config

// Conflict is another host claiming an address the responder answers for.
type Conflict = responder.Conflict

// Responder answers neighbor solicitations for the addresses it is given.
// Its Reconcile sets the whole desired state (interface name -> IPv6
// addresses answered on it, other addresses ignored), idempotently:
// addresses new on an interface are announced with unsolicited neighbor
// advertisements, removed ones are no longer answered when it returns. Run
// owns the per-interface sockets until its context ends; it returns early
// with an error wrapping ErrPermission if a socket cannot be opened for
// lack of privilege. Interfaces that are missing, down or still without a
// usable link-local address are picked up as soon as they are ready: the
// responder watches the interfaces itself (rtnetlink), and reopens the
// socket of one that went away and came back.
type Responder = responder.Engine

// New returns a Responder. It starts nothing; call Run.
func New(opts Options) *Responder {
	return newResponder(opts, listen, nil)
}

// newResponder lets tests replace the sockets and the interface list.
func newResponder(opts Options, l listenFunc, list func() ([]ifaces.Interface, error)) *Responder {
	return responder.NewFromConfig(protocol{listen: l}, opts, list)
}

// packetConn is the ICMPv6 socket of one interface. *ndp.Conn satisfies
// it; tests use a fake.
type packetConn interface {
	ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error)
	WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error
	JoinGroup(group netip.Addr) error
	LeaveGroup(group netip.Addr) error
	Close() error
}

var _ packetConn = (*ndp.Conn)(nil)

// listenFunc opens the socket on the interface and returns it with the
// link-local address answers are sent from.
type listenFunc func(iface ifaces.Interface) (packetConn, netip.Addr, error)

// listen opens an ICMPv6 socket for the interface that sees only neighbor
// solicitations and reports each packet's hop limit, destination and
// interface.
//
// The socket is bound to the unspecified address, not to the link-local
// one: Linux delivers to a raw socket bound to an address only the packets
// for that address and for the groups the socket joined, and neighbour
// unreachability probes are unicast to the VIP itself, so a socket bound
// to the link-local address never sees them and clients' entries go
// FAILED. Bound to the unspecified address the socket is not tied to the
// interface, so Serve drops packets that arrived on other interfaces.
func listen(iface ifaces.Interface) (packetConn, netip.Addr, error) {
	ll, err := linkLocal(iface)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	// No name: the ndp package would put it as the zone of every
	// destination, and the standard library maps zone names to indexes
	// through a cache refreshed at most once a minute, so after the
	// interface is re-created sends would name the old index and fail
	// (EINVAL: it differs from the IPV6_PKTINFO index). Without a zone the
	// kernel takes the interface from IPV6_PKTINFO.
	ifi := iface.Net()
	ifi.Name = ""
	c, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, netip.Addr{}, fmt.Errorf("set ICMPv6 filter: %w", err)
	}
	if err := c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		c.Close()
		return nil, netip.Addr{}, fmt.Errorf("ask for control messages: %w", err)
	}
	return c, ll, nil
}

// linkLocal returns the interface's first usable link-local address (as
// listed), else its first link-local address.
func linkLocal(iface ifaces.Interface) (netip.Addr, error) {
	if iface.LinkLocal.IsValid() {
		return iface.LinkLocal, nil
	}
	addrs, err := iface.Net().Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", iface.Name, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no link-local address on %s", iface.Name)
}

type protocol struct {
	listen listenFunc
}

var _ responder.Protocol = protocol{}

func (protocol) Name() string { return "ndp" }

func (protocol) Wants(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast() &&
		!a.IsLoopback() && !a.IsLinkLocalUnicast()
}

func (protocol) Ready(i ifaces.Interface) error {
	switch {
	case !i.Up():
		return errors.New("interface down")
	case len(i.MAC) != macLen:
		return errors.New("not an Ethernet interface")
	case !i.HasIPv6LinkLocal:
		return errors.New("no usable IPv6 link-local address (yet)")
	}
	return nil
}

// Changed: the socket sends from the interface's link-local address, so
// a new one means a new socket (the kernel refuses the old as a source).
func (protocol) Changed(old, cur ifaces.Interface) bool { return old.LinkLocal != cur.LinkLocal }

var _ responder.Changer = protocol{}

func (p protocol) Open(i ifaces.Interface) (responder.Conn, error) {
	pc, addr, err := p.listen(i)
	if err != nil {
		return nil, err
	}
	return &conn{
		pc:     pc,
		mac:    i.MAC,
		index:  i.Index,
		self:   addr.WithZone(""),
		send:   &ipv6.ControlMessage{HopLimit: hopLimit, Src: addr.AsSlice(), IfIndex: i.Index},
		groups: map[netip.Addr]int{}, joined: map[netip.Addr]bool{}, unjoined: map[netip.Addr]bool{},
	}, nil
}

// conn is the NDP side of one interface.
type conn struct {
	pc    packetConn
	mac   net.HardwareAddr
	index int
	self  netip.Addr           // the link-local address answers come from
	send  *ipv6.ControlMessage // source, interface and hop limit of what is sent
	// groups counts the answered addresses per solicited-node group: several
	// addresses can share one, and it is left when the last goes. joined
	// are the addresses counted there; unjoined those whose join failed
	// (the socket's memberships are limited, by optmem_max), tried again
	// when another address leaves.
	groups   map[netip.Addr]int
	joined   map[netip.Addr]bool
	unjoined map[netip.Addr]bool
}

var _ responder.Conn = (*conn)(nil)

// readBuf holds any neighbor solicitation (they are never fragmented and
// fit in the IPv6 minimum MTU).
const readBuf = 1280

func (c *conn) Serve(a responder.Answerer) error {
	buf := make([]byte, readBuf)
	for {
		n, cm, src, err := c.pc.ReadRaw(buf)
		if err != nil {
			return err
		}
		c.handle(buf[:n], cm, src, a)
	}
}

// handle deals with one received ICMPv6 message.
func (c *conn) handle(b []byte, cm *ipv6.ControlMessage, src netip.Addr, a responder.Answerer) {
	if cm == nil || cm.IfIndex != c.index {
		return // arrived on another interface
	}
	sol, ok := parseSolicitation(b, cm, src.WithZone(""), c.self, c.mac)
	if !ok {
		return
	}
	if sol.src.IsUnspecified() {
		// Duplicate address detection: another host about to take the
		// address. The answer tells it the address is in use.
		a.Conflict(sol.target, nil, true)
	}
	a.Answer(sol.target, func() error {
		dst, na := advertisement(sol, c.mac)
		return c.pc.WriteTo(na, c.send, dst)
	})
}

// Forms: one unsolicited neighbor advertisement (override set).
func (c *conn) Forms() int { return 1 }

func (c *conn) Announce(ip netip.Addr, _ int) error {
	return c.pc.WriteTo(unsolicited(ip, c.mac), c.send, allNodes)
}

func (c *conn) Join(ip netip.Addr) error {
	if c.joined[ip] {
		return nil
	}
	if err := c.join(ip); err != nil {
		c.unjoined[ip] = true
		return err
	}
	return nil
}

// join counts ip in its group, joining the group first when ip is its
// first address.
func (c *conn) join(ip netip.Addr) error {
	g, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return err
	}
	if c.groups[g] == 0 {
		if err := c.pc.JoinGroup(g); err != nil {
			return fmt.Errorf("join %s: %w", g, err)
		}
	}
	c.groups[g]++
	c.joined[ip] = true
	return nil
}

func (c *conn) Leave(ip netip.Addr) error {
	delete(c.unjoined, ip)
	if !c.joined[ip] {
		return nil // its join failed: nothing to leave
	}
	delete(c.joined, ip)
	g, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return err
	}
	if c.groups[g] > 1 {
		c.groups[g]--
		return nil
	}
	delete(c.groups, g)
	if err := c.pc.LeaveGroup(g); err != nil {
		return fmt.Errorf("leave %s: %w", g, err)
	}
	// A membership is free: the addresses whose join failed get it.
	for a := range c.unjoined {
		if c.join(a) != nil {
			break
		}
		delete(c.unjoined, a)
	}
	return nil
}

func (c *conn) Close() error { return c.pc.Close() }

const (
	macLen = 6
	// icmpHeaderLen + the reserved word + the target address.
	nsMinLen  = 24
	hopLimit  = 255
	icmpCode0 = 0
)

var allNodes = netip.MustParseAddr("ff02::1")

// solicitation is a neighbor solicitation worth answering.
type solicitation struct {
	src    netip.Addr // the unspecified address for duplicate address detection
	target netip.Addr
}

// parseSolicitation returns the neighbor solicitation in the ICMPv6
// message b if it passes the checks of RFC 4861 7.1.1 and is not this
// host's own: hop limit 255, code 0, a unicast target, no source
// link-layer address option when the source is unspecified (and then a
// solicited-node multicast destination), a source other than self and a
// source link-layer address other than own. It never panics.
func parseSolicitation(b []byte, cm *ipv6.ControlMessage, src, self netip.Addr, own net.HardwareAddr) (solicitation, bool) {
	if cm == nil || cm.HopLimit != hopLimit || len(b) < nsMinLen ||
		ipv6.ICMPType(b[0]) != ipv6.ICMPTypeNeighborSolicitation || b[1] != icmpCode0 {
		return solicitation{}, false
	}
	if src == self || !src.Is6() || src.IsMulticast() {
		return solicitation{}, false
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return solicitation{}, false
	}
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok || !ns.TargetAddress.Is6() || ns.TargetAddress.IsMulticast() {
		return solicitation{}, false
	}
	var sourceLLA net.HardwareAddr
	for _, o := range ns.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Source {
			sourceLLA = lla.Addr
		}
	}
	if sourceLLA != nil && bytes.Equal(sourceLLA, own) {
		return solicitation{}, false
	}
	if src.IsUnspecified() {
		dst, ok := netip.AddrFromSlice(cm.Dst)
		if sourceLLA != nil || !ok || !isSolicitedNode(dst) {
			return solicitation{}, false
		}
	}
	return solicitation{src: src, target: ns.TargetAddress.WithZone("")}, true
}

// isSolicitedNode reports whether a is in ff02::1:ff00:0/104.
func isSolicitedNode(a netip.Addr) bool {
	return solicitedNodePrefix.Contains(a)
}

var solicitedNodePrefix = netip.MustParsePrefix("ff02::1:ff00:0/104")

// advertisement is the answer to sol from mac and where it goes: a
// solicited advertisement with the override flag back to the source, or,
// for duplicate address detection (unspecified source), an advertisement
// without the solicited flag to all nodes (RFC 4861 7.2.4).
func advertisement(sol solicitation, mac net.HardwareAddr) (netip.Addr, *ndp.NeighborAdvertisement) {
	if sol.src.IsUnspecified() {
		return allNodes, unsolicited(sol.target, mac)
	}
	return sol.src, &ndp.NeighborAdvertisement{
		Solicited:     true,
		Override:      true,
		TargetAddress: sol.target,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
}

// unsolicited is the announcement "ip is at mac", overriding caches.
func unsolicited(ip netip.Addr, mac net.HardwareAddr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
}
