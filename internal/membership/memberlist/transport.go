package memberlist

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	ml "github.com/hashicorp/memberlist"
)

// transport is memberlist's network transport: UDP for packets (probes,
// acks, gossip), TCP for streams (push/pull, joins), on one address and
// port, like memberlist's own NetTransport. It differs in one thing: it
// reads packets into one buffer and copies each out at its size, where
// NetTransport allocates 64 KiB for every packet received. At rest a
// speaker receives about ten packets a second, so that was 640 KB/s of
// garbage, and the garbage collector's work for it was most of the
// speaker's CPU at rest.
type transport struct {
	bindIP   net.IP
	tcp      *net.TCPListener
	udp      *net.UDPConn
	packetCh chan *ml.Packet
	streamCh chan net.Conn
	closed   atomic.Bool
	done     chan struct{} // closed by Shutdown
	wg       sync.WaitGroup
}

var _ ml.Transport = (*transport)(nil)

const (
	// maxPacket is the largest UDP payload.
	maxPacket = 65536
	// udpRecvBuf is the socket receive buffer asked for (halved until the
	// kernel takes it), so bursts of gossip are not dropped.
	udpRecvBuf = 2 << 20
)

// newTransport listens on addr:port (port 0: any free port, the same for
// TCP and UDP) and starts reading; Shutdown stops it.
func newTransport(addr string, port int) (*transport, error) {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, fmt.Errorf("bind address %q is not an IP address", addr)
	}
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("listen on TCP %s: %w", net.JoinHostPort(addr, fmt.Sprint(port)), err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("listen on UDP %s: %w", net.JoinHostPort(addr, fmt.Sprint(port)), err)
	}
	for size := udpRecvBuf; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	t := &transport{
		bindIP:   ip,
		tcp:      tcp,
		udp:      udp,
		packetCh: make(chan *ml.Packet),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}
	t.wg.Go(t.readPackets)
	t.wg.Go(t.acceptStreams)
	return t, nil
}

// port is the port listened on.
func (t *transport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is ip:port when ip is given, else the bound address
// (a private address of this host when bound to every address) and the
// bound port.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	a := t.bindIP
	if a.IsUnspecified() {
		private, err := sockaddr.GetPrivateIP()
		if err != nil {
			return nil, 0, fmt.Errorf("find this host's private address: %w", err)
		}
		if a = net.ParseIP(private); a == nil {
			return nil, 0, errors.New("no private address on this host: set the advertise address")
		}
	}
	if a4 := a.To4(); a4 != nil {
		a = a4
	}
	return a, t.port(), nil
}

// WriteTo sends b to addr ("ip:port") as one UDP packet.
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, ua)
	return time.Now(), err
}

func (t *transport) PacketCh() <-chan *ml.Packet { return t.packetCh }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown closes the sockets and waits for the readers.
func (t *transport) Shutdown() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(t.done)
	err := errors.Join(t.tcp.Close(), t.udp.Close())
	t.wg.Wait()
	return err
}

// readPackets hands every packet to memberlist, each in a slice of its
// own size.
func (t *transport) readPackets() {
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if t.closed.Load() {
				return
			}
			continue // a transient error (ICMP reflected as an error)
		}
		if n < 1 {
			continue // memberlist ignores empty packets anyway
		}
		select {
		case t.packetCh <- &ml.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: now}:
		case <-t.done:
			return
		}
	}
}

// acceptStreams hands every TCP connection to memberlist, backing off
// while accepting fails.
func (t *transport) acceptStreams() {
	const maxDelay = time.Second
	var delay time.Duration
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closed.Load() {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxDelay)
			select {
			case <-time.After(delay):
			case <-t.done:
				return
			}
			continue
		}
		delay = 0
		select {
		case t.streamCh <- c:
		case <-t.done:
			c.Close()
			return
		}
	}
}
