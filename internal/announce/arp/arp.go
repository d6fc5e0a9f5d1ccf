package arp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/internal/responder"
)

// ErrPermission is wrapped by the error Run returns when the raw socket
// cannot be opened for lack of privilege (CAP_NET_RAW).
var ErrPermission = responder.ErrPermission

// ErrStopped is returned by Reconcile once Run has returned.
var ErrStopped = responder.ErrStopped

// Options configure a Responder. Zero values take defaults. OnConflict
// hears of a host that probes for an owned address (ARP probe) at once,
// and of one that uses it (sends ARP from it) when it still does 2 s
// later, so that handovers between nodes do not count.
type Options = responder.Config

// Conflict is another host claiming an address the responder answers for.
type Conflict = responder.Conflict

// Responder answers ARP for the addresses it is given. Its Reconcile sets
// the whole desired state (interface name -> IPv4 addresses answered on
// it, other addresses ignored), idempotently: addresses new on an
// interface are announced with gratuitous ARP, removed ones are no longer
// answered when it returns. Run owns the per-interface sockets until its
// context ends; it returns early with an error wrapping ErrPermission if a
// socket cannot be opened for lack of privilege. Interfaces that are
// missing or down are picked up as soon as they are up: the responder
// watches the interfaces itself (rtnetlink), and reopens the socket of one
// that went away and came back.
type Responder = responder.Engine

// New returns a Responder. It starts nothing; call Run.
func New(opts Options) *Responder {
	return newResponder(opts, listen, nil)
}

// newResponder lets tests replace the sockets and the interface list.
func newResponder(opts Options, l listenFunc, list func() ([]ifaces.Interface, error)) *Responder {
	return responder.NewFromConfig(protocol{listen: l}, opts, list)
}

// packetConn is the raw link-layer socket of one interface: whole Ethernet
// frames in and out. *packet.Conn satisfies it; tests use a fake.
type packetConn interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	Close() error
}

var _ packetConn = (*packet.Conn)(nil)

type listenFunc func(iface ifaces.Interface) (packetConn, error)

// etherTypeARP is the Ethernet type of ARP frames.
const etherTypeARP = 0x0806

// listen opens a raw AF_PACKET socket for ARP requests on the interface.
// The kernel keeps the rest from the reader: replies (a takeover by another
// node broadcasts thousands of gratuitous ones) through requestFilter, and
// the frames this host sends through PACKET_IGNORE_OUTGOING (Linux 4.20;
// without it they are read and dropped).
func listen(iface ifaces.Interface) (packetConn, error) {
	c, err := packet.Listen(iface.Net(), packet.Raw, etherTypeARP, &packet.Config{Filter: requestFilter})
	if err != nil {
		return nil, err
	}
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		})
	}
	return c, nil
}

// arpOpOffset is where the ARP operation is in an Ethernet frame.
const arpOpOffset = ethHeaderLen + 6

// requestFilter passes ARP requests (operation 1) and drops every other
// frame.
var requestFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: arpOpOffset, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(arp.OperationRequest), SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
})

func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	return raw
}

type protocol struct {
	listen listenFunc
}

var _ responder.Protocol = protocol{}

func (protocol) Name() string { return "arp" }

func (protocol) Wants(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && a != limitedBroadcast
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func (protocol) Ready(i ifaces.Interface) error {
	switch {
	case !i.Up():
		return errors.New("interface down")
	case len(i.MAC) != macLen:
		return errors.New("not an Ethernet interface")
	}
	return nil
}

func (p protocol) Open(i ifaces.Interface) (responder.Conn, error) {
	pc, err := p.listen(i)
	if err != nil {
		return nil, err
	}
	return &conn{pc: pc, mac: i.MAC}, nil
}

// conn is the ARP side of one interface.
type conn struct {
	pc   packetConn
	mac  net.HardwareAddr
	grat [2][]byte // Announce's frames, built on first use
}

var _ responder.Conn = (*conn)(nil)

// readBuf is large enough for any ARP frame over Ethernet.
const readBuf = 256

func (c *conn) Serve(a responder.Answerer) error {
	buf := make([]byte, readBuf)
	for {
		n, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		c.handle(buf[:n], a)
	}
}

// handle deals with one received frame.
func (c *conn) handle(frame []byte, a responder.Answerer) {
	req, ok := parseRequest(frame, c.mac)
	if !ok {
		return
	}
	switch {
	case req.senderIP == req.targetIP:
		// A gratuitous ARP: another host announcing the address, not asking.
		a.Conflict(req.targetIP, req.senderMAC, false)
		return
	case req.senderIP.IsUnspecified():
		// An ARP probe (RFC 5227): another host about to take the
		// address. The answer below tells it the address is in use.
		a.Conflict(req.targetIP, req.senderMAC, true)
	default:
		// Whatever it asks, the sender uses its sender address.
		a.Conflict(req.senderIP, req.senderMAC, false)
	}
	a.Answer(req.targetIP, func() error {
		return c.write(replyFrame(req, c.mac), req.senderMAC)
	})
}

// Forms: a gratuitous ARP request and a gratuitous ARP reply. Linux
// updates an existing neighbour entry on either; other hosts may heed only
// one of them.
func (c *conn) Forms() int { return 2 }

// Announce sends from a per-form template with the address patched in:
// a takeover sends thousands, and the sender should not allocate (nor be
// drafted into garbage collection) meanwhile. It runs under the link's
// lock, like every write.
func (c *conn) Announce(ip netip.Addr, form int) error {
	if c.grat[form] == nil {
		c.grat[form] = gratuitousFrame(c.mac, netip.IPv4Unspecified(), form)
	}
	f := c.grat[form]
	a := ip.As4()
	copy(f[senderIPOffset:], a[:])
	copy(f[targetIPOffset:], a[:])
	_, err := c.pc.WriteTo(f, broadcastAddr)
	return err
}

// Where the ARP sender and target protocol addresses are in an Ethernet
// frame.
const (
	senderIPOffset = ethHeaderLen + 14
	targetIPOffset = ethHeaderLen + 24
)

var broadcastAddr = &packet.Addr{HardwareAddr: broadcast}

func (c *conn) Join(netip.Addr) error  { return nil }
func (c *conn) Leave(netip.Addr) error { return nil }
func (c *conn) Close() error           { return c.pc.Close() }

func (c *conn) write(frame []byte, dst net.HardwareAddr) error {
	_, err := c.pc.WriteTo(frame, &packet.Addr{HardwareAddr: dst})
	return err
}

const (
	macLen         = 6
	ethHeaderLen   = 14
	hwTypeEthernet = 1
	protoTypeIPv4  = 0x0800
	ipv4Len        = 4
)

var (
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC   = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// request is an ARP request worth looking at.
type request struct {
	senderMAC net.HardwareAddr
	senderIP  netip.Addr
	targetIP  netip.Addr
}

// parseRequest returns the ARP request in frame, if frame is an Ethernet
// ARP request for IPv4, broadcast or sent to own, from a unicast sender
// other than own. It never panics.
func parseRequest(frame []byte, own net.HardwareAddr) (request, bool) {
	if len(frame) < ethHeaderLen || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return request{}, false
	}
	dst, src := net.HardwareAddr(frame[0:6]), net.HardwareAddr(frame[6:12])
	if bytes.Equal(src, own) {
		// The socket also sees the frames this host sends.
		return request{}, false
	}
	if !bytes.Equal(dst, broadcast) && !bytes.Equal(dst, own) {
		return request{}, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(frame[ethHeaderLen:]); err != nil {
		return request{}, false
	}
	if p.HardwareType != hwTypeEthernet || p.ProtocolType != protoTypeIPv4 ||
		p.HardwareAddrLength != macLen || p.IPLength != ipv4Len ||
		p.Operation != arp.OperationRequest {
		return request{}, false
	}
	if !unicastMAC(p.SenderHardwareAddr) || bytes.Equal(p.SenderHardwareAddr, own) {
		return request{}, false
	}
	return request{
		senderMAC: p.SenderHardwareAddr,
		senderIP:  p.SenderIP,
		targetIP:  p.TargetIP,
	}, true
}

// unicastMAC reports whether m is a usable unicast MAC address.
func unicastMAC(m net.HardwareAddr) bool {
	return len(m) == macLen && m[0]&1 == 0 && !bytes.Equal(m, zeroMAC)
}

// replyFrame is the answer to req from mac: "req.targetIP is at mac".
func replyFrame(req request, mac net.HardwareAddr) []byte {
	return frame(req.senderMAC, mac, arp.OperationReply, req.targetIP, req.senderMAC, req.senderIP)
}

// gratuitousFrame is an announcement of ip at mac, broadcast: form 0 is
// a request for ip from ip, form 1 a reply.
func gratuitousFrame(mac net.HardwareAddr, ip netip.Addr, form int) []byte {
	if form == 0 {
		return frame(broadcast, mac, arp.OperationRequest, ip, zeroMAC, ip)
	}
	return frame(broadcast, mac, arp.OperationReply, ip, mac, ip)
}

// frame builds an Ethernet ARP frame from mac (also the sender MAC).
func frame(dst, mac net.HardwareAddr, op arp.Operation, senderIP netip.Addr, targetMAC net.HardwareAddr, targetIP netip.Addr) []byte {
	p := arp.Packet{
		HardwareType:       hwTypeEthernet,
		ProtocolType:       protoTypeIPv4,
		HardwareAddrLength: macLen,
		IPLength:           ipv4Len,
		Operation:          op,
		SenderHardwareAddr: mac,
		SenderIP:           senderIP,
		TargetHardwareAddr: targetMAC,
		TargetIP:           targetIP,
	}
	// MarshalBinary cannot fail; the lengths are fixed above.
	payload, _ := p.MarshalBinary()
	f := make([]byte, 0, ethHeaderLen+len(payload))
	f = append(f, dst...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, etherTypeARP)
	return append(f, payload...)
}
