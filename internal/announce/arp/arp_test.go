package arp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/packet"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/bpf"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/internal/responder"
	"github.com/herald-lb/herald/internal/metrics"
)

var (
	ownMAC    = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	peerMAC   = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x02}
	markerMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x03}
	otherMAC  = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x04}
	bcast     = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zero      = net.HardwareAddr{0, 0, 0, 0, 0, 0}

	vip1     = netip.MustParseAddr("172.31.250.10")
	vip2     = netip.MustParseAddr("172.31.250.11")
	notOwned = netip.MustParseAddr("172.31.250.99")
	peerIP   = netip.MustParseAddr("172.31.250.2")
	markerIP = netip.MustParseAddr("172.31.250.3")
	anyIP    = netip.MustParseAddr("0.0.0.0")
)

// arpFrame builds an Ethernet ARP frame field by field, independently of
// the code under test.
func arpFrame(ethDst, ethSrc net.HardwareAddr, op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := append([]byte{}, ethDst...)
	b = append(b, ethSrc...)
	b = append(b, 0x08, 0x06) // ethertype ARP
	b = append(b, 0x00, 0x01) // hardware type Ethernet
	b = append(b, 0x08, 0x00) // protocol type IPv4
	b = append(b, 6, 4)       // address lengths
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha...)
	b = append(b, spa.AsSlice()...)
	b = append(b, tha...)
	return append(b, tpa.AsSlice()...)
}

// requestFor is a request from peer, broadcast, for target.
func requestFor(target netip.Addr) []byte {
	return arpFrame(bcast, peerMAC, 1, peerMAC, peerIP, zero, target)
}

// marker is a request for vip2 from another host: its reply tells that the
// frames fed before it have been handled.
var marker = arpFrame(bcast, markerMAC, 1, markerMAC, markerIP, zero, vip2)
var markerReply = arpFrame(markerMAC, ownMAC, 2, ownMAC, vip2, markerMAC, markerIP)

// fakeConn is a packetConn fed and read by the test.
type fakeConn struct {
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	out    chan written
}

type written struct {
	frame []byte
	dst   net.HardwareAddr
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan []byte), closed: make(chan struct{}), out: make(chan written, 1000)}
}

func (c *fakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-c.in:
		var src net.HardwareAddr
		if len(f) >= 12 {
			src = f[6:12]
		}
		return copy(b, f), &packet.Addr{HardwareAddr: src}, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakeConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.out <- written{bytes.Clone(b), addr.(*packet.Addr).HardwareAddr}
	return len(b), nil
}

func (c *fakeConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

// next returns the next frame written, failing after a timeout.
func (c *fakeConn) next(t *testing.T) written {
	t.Helper()
	select {
	case w := <-c.out:
		return w
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written")
		return written{}
	}
}

// until feeds the marker and returns what was written before its reply.
// When it returns, the marker has been handled completely (metrics too):
// the reader has taken the empty frame fed after it (in is unbuffered).
func (c *fakeConn) until(t *testing.T) []written {
	t.Helper()
	c.in <- marker
	var out []written
	for {
		w := c.next(t)
		if bytes.Equal(w.frame, markerReply) {
			c.in <- []byte{}
			return out
		}
		out = append(out, w)
	}
}

// gratuitous reads n announcements (written by another goroutine than
// the answers, so tests wait for them before sending requests).
func (c *fakeConn) gratuitous(t *testing.T, n int) {
	t.Helper()
	for range n {
		if w := c.next(t); !bytes.Equal(w.dst, bcast) {
			t.Fatalf("want an announcement, got % x", w.frame)
		}
	}
}

func (c *fakeConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case w := <-c.out:
		t.Fatalf("unexpected frame written: % x", w.frame)
	case <-time.After(d):
	}
}

type harness struct {
	r       *Responder
	metrics *metrics.L2
	conns   chan *fakeConn
	runErr  chan error
}

// start runs a Responder on a fake eth0 whose sockets are fakeConns (or
// fail with listenErr).
func start(t *testing.T, opts Options, listenErr error) *harness {
	t.Helper()
	h := &harness{metrics: metrics.NewL2(prometheus.NewRegistry()), conns: make(chan *fakeConn, 4), runErr: make(chan error, 1)}
	opts.Metrics = h.metrics
	eth0 := ifaces.Interface{Name: "eth0", Index: 2, MAC: ownMAC, Flags: net.FlagUp | net.FlagBroadcast, HasIPv4: true}
	h.r = newResponder(opts, func(ifaces.Interface) (packetConn, error) {
		if listenErr != nil {
			return nil, listenErr
		}
		c := newFakeConn()
		h.conns <- c
		return c, nil
	}, func() ([]ifaces.Interface, error) { return []ifaces.Interface{eth0}, nil })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.runErr <- h.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.runErr:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
	return h
}

func (h *harness) conn(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-h.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no socket opened")
		return nil
	}
}

func (h *harness) reconcile(t *testing.T, addrs ...netip.Addr) {
	t.Helper()
	if err := h.r.Reconcile(map[string][]netip.Addr{"eth0": addrs}); err != nil {
		t.Fatal(err)
	}
}

func counter(t *testing.T, v *prometheus.CounterVec) float64 {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues("arp", "eth0").Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestGratuitousOnAdd(t *testing.T) {
	h := start(t, Options{Gratuitous: 3, GratuitousInterval: time.Millisecond}, nil)
	h.reconcile(t, vip1)
	c := h.conn(t)
	wantRequest := arpFrame(bcast, ownMAC, 1, ownMAC, vip1, zero, vip1)
	wantReply := arpFrame(bcast, ownMAC, 2, ownMAC, vip1, ownMAC, vip1)
	for round := range 3 {
		for _, want := range [][]byte{wantRequest, wantReply} {
			w := c.next(t)
			if diff := cmp.Diff(want, w.frame); diff != "" {
				t.Fatalf("round %d (-want +got):\n%s", round, diff)
			}
			if !bytes.Equal(w.dst, bcast) {
				t.Fatalf("round %d sent to %s, want broadcast", round, w.dst)
			}
		}
	}
	c.quiet(t, 50*time.Millisecond)
	if got := counter(t, h.metrics.GratuitousSent); got != 6 {
		t.Errorf("GratuitousSent = %v, want 6", got)
	}

	// Only the new address is announced on the next change.
	h.reconcile(t, vip1, vip2)
	for range 6 {
		if w := c.next(t); !bytes.Equal(w.frame[28:32], vip2.AsSlice()) {
			t.Fatalf("announced % x, want %s only", w.frame[28:32], vip2)
		}
	}
	c.quiet(t, 50*time.Millisecond)
}

// The kernel filter passes requests (gratuitous ones too, for conflict
// logging) and drops replies and anything too short to be ARP.
func TestRequestFilter(t *testing.T) {
	vm, err := bpf.NewVM(mustDisassemble(t, requestFilter))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"request", arpFrame(bcast, peerMAC, 1, peerMAC, peerIP, zero, vip1), true},
		{"gratuitous request", arpFrame(bcast, peerMAC, 1, peerMAC, vip1, zero, vip1), true},
		{"reply", arpFrame(ownMAC, peerMAC, 2, peerMAC, peerIP, ownMAC, vip1), false},
		{"gratuitous reply", arpFrame(bcast, peerMAC, 2, peerMAC, vip1, peerMAC, vip1), false},
		{"truncated", arpFrame(bcast, peerMAC, 1, peerMAC, peerIP, zero, vip1)[:arpOpOffset+1], false},
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.frame)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := n > 0; got != tt.pass {
			t.Errorf("%s: passed = %v, want %v", tt.name, got, tt.pass)
		}
	}
}

func mustDisassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	t.Helper()
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the filter does not disassemble")
	}
	return prog
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    []byte // nil: no answer
		counted bool   // counted as a request received
	}{
		{
			name:    "broadcast request for an owned address",
			in:      requestFor(vip1),
			want:    arpFrame(peerMAC, ownMAC, 2, ownMAC, vip1, peerMAC, peerIP),
			counted: true,
		},
		{
			name:    "unicast request (neighbour probe)",
			in:      arpFrame(ownMAC, peerMAC, 1, peerMAC, peerIP, ownMAC, vip1),
			want:    arpFrame(peerMAC, ownMAC, 2, ownMAC, vip1, peerMAC, peerIP),
			counted: true,
		},
		{
			name:    "probe (RFC 5227, sender 0.0.0.0) defended",
			in:      arpFrame(bcast, peerMAC, 1, peerMAC, anyIP, zero, vip1),
			want:    arpFrame(peerMAC, ownMAC, 2, ownMAC, vip1, peerMAC, anyIP),
			counted: true,
		},
		{
			name:    "reply goes to the ARP sender, not the frame source",
			in:      arpFrame(bcast, otherMAC, 1, peerMAC, peerIP, zero, vip1),
			want:    arpFrame(peerMAC, ownMAC, 2, ownMAC, vip1, peerMAC, peerIP),
			counted: true,
		},
		{name: "address not owned", in: requestFor(notOwned)},
		{name: "own frame (seen on the way out)", in: arpFrame(bcast, ownMAC, 1, ownMAC, vip1, zero, vip1)},
		{name: "own MAC as ARP sender", in: arpFrame(bcast, otherMAC, 1, ownMAC, peerIP, zero, vip1)},
		{name: "unicast to another host", in: arpFrame(otherMAC, peerMAC, 1, peerMAC, peerIP, otherMAC, vip1)},
		{name: "a reply", in: arpFrame(bcast, peerMAC, 2, peerMAC, peerIP, zero, vip1)},
		{name: "gratuitous ARP from another host", in: arpFrame(bcast, peerMAC, 1, peerMAC, vip1, zero, vip1)},
		{name: "multicast sender MAC", in: arpFrame(bcast, peerMAC, 1, net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, peerIP, zero, vip1)},
		{name: "zero sender MAC", in: arpFrame(bcast, peerMAC, 1, zero, peerIP, zero, vip1)},
		{name: "not IPv4", in: mutate(requestFor(vip1), 16, 0x86, 0xdd)},
		{name: "not Ethernet", in: mutate(requestFor(vip1), 14, 0x00, 0x06)},
		{name: "wrong address lengths", in: mutate(requestFor(vip1), 18, 8, 4)},
		{name: "not ARP", in: mutate(requestFor(vip1), 12, 0x08, 0x00)},
		{name: "truncated", in: requestFor(vip1)[:40]},
		{name: "Ethernet header only", in: requestFor(vip1)[:14]},
		{name: "empty", in: []byte{}},
	}
	h := start(t, Options{Gratuitous: 1}, nil)
	h.reconcile(t, vip1, vip2)
	c := h.conn(t)
	c.gratuitous(t, 4)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests, responses := counter(t, h.metrics.RequestsReceived), counter(t, h.metrics.ResponsesSent)
			c.in <- tt.in
			got := c.until(t)
			var want []written
			if tt.want != nil {
				want = []written{{tt.want, tt.want[0:6]}}
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(written{})); diff != "" {
				t.Fatalf("written (-want +got):\n%s", diff)
			}
			// The marker counts one request and one response.
			wantCount := 1.0
			if tt.counted {
				wantCount = 2
			}
			if got := counter(t, h.metrics.RequestsReceived) - requests; got != wantCount {
				t.Errorf("RequestsReceived +%v, want +%v", got, wantCount)
			}
			if got := counter(t, h.metrics.ResponsesSent) - responses; got != wantCount {
				t.Errorf("ResponsesSent +%v, want +%v", got, wantCount)
			}
		})
	}
}

// mutate returns b with bytes from offset replaced.
func mutate(b []byte, offset int, with ...byte) []byte {
	b = bytes.Clone(b)
	copy(b[offset:], with)
	return b
}

func TestRemovalStopsAnswering(t *testing.T) {
	h := start(t, Options{Gratuitous: 1}, nil)
	h.reconcile(t, vip1, vip2)
	c := h.conn(t)
	c.gratuitous(t, 4)
	h.reconcile(t, vip2)
	c.in <- requestFor(vip1)
	if got := c.until(t); len(got) != 0 {
		t.Fatalf("answered for a removed address: % x", got[0].frame)
	}
	h.reconcile(t, vip1, vip2)
	c.gratuitous(t, 2) // vip1 announced again
	c.in <- requestFor(vip1)
	if got := c.until(t); len(got) != 1 {
		t.Fatalf("%d answers for a re-added address, want 1", len(got))
	}
}

func TestPermissionError(t *testing.T) {
	h := start(t, Options{}, fmt.Errorf("listen packet: %w", os.NewSyscallError("socket", syscall.EPERM)))
	h.reconcile(t, vip1)
	select {
	case err := <-h.runErr:
		if !errors.Is(err, ErrPermission) {
			t.Fatalf("Run: %v, want ErrPermission", err)
		}
		h.runErr <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not fail")
	}
}

func TestWants(t *testing.T) {
	p := protocol{}
	for s, want := range map[string]bool{
		"172.31.250.10":   true,
		"0.0.0.0":         false,
		"255.255.255.255": false,
		"224.0.0.1":       false,
		"127.0.0.1":       false,
		"fd00::1":         false,
	} {
		if got := p.Wants(netip.MustParseAddr(s)); got != want {
			t.Errorf("Wants(%s) = %t, want %t", s, got, want)
		}
	}
}

// fakeAnswerer answers for owned and records what Serve asked.
type fakeAnswerer struct {
	owned     map[netip.Addr]bool
	targets   []netip.Addr
	conflicts []string // "ip mac probe"
}

func (a *fakeAnswerer) Answer(target netip.Addr, reply func() error) {
	a.targets = append(a.targets, target)
	if a.owned[target] {
		_ = reply()
	}
}

func (a *fakeAnswerer) Conflict(target netip.Addr, from net.HardwareAddr, probe bool) {
	a.conflicts = append(a.conflicts, fmt.Sprintf("%s %s %v", target, from, probe))
}

// TestHandleConflicts: every request tells the engine what its sender
// claims: a gratuitous request its address (and asks nothing), a probe the
// target (and is answered: the address is in use), any other request its
// sender address. The engine decides what is owned and what to report.
func TestHandleConflicts(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       []byte
		conflict string
		answered []netip.Addr
	}{
		{"gratuitous", arpFrame(bcast, peerMAC, 1, peerMAC, vip1, zero, vip1), fmt.Sprintf("%s %s false", vip1, peerMAC), nil},
		{"probe", arpFrame(bcast, peerMAC, 1, peerMAC, anyIP, zero, vip1), fmt.Sprintf("%s %s true", vip1, peerMAC), []netip.Addr{vip1}},
		{"a host using vip1 asks for another", arpFrame(bcast, peerMAC, 1, peerMAC, vip1, zero, peerIP), fmt.Sprintf("%s %s false", vip1, peerMAC), []netip.Addr{peerIP}},
		{"a request", requestFor(vip1), fmt.Sprintf("%s %s false", peerIP, peerMAC), []netip.Addr{vip1}},
		{"own frame", arpFrame(bcast, ownMAC, 1, ownMAC, vip1, zero, vip1), "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &fakeAnswerer{owned: map[netip.Addr]bool{}}
			(&conn{pc: newFakeConn(), mac: ownMAC}).handle(tt.in, a)
			var want []string
			if tt.conflict != "" {
				want = []string{tt.conflict}
			}
			if diff := cmp.Diff(want, a.conflicts); diff != "" {
				t.Errorf("conflicts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.answered, a.targets, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Answer targets (-want +got):\n%s", diff)
			}
		})
	}
}

var _ responder.Answerer = (*fakeAnswerer)(nil)

func FuzzHandleARP(f *testing.F) {
	f.Add(requestFor(vip1))
	f.Add(requestFor(notOwned))
	f.Add(arpFrame(ownMAC, peerMAC, 1, peerMAC, peerIP, ownMAC, vip1))
	f.Add(arpFrame(bcast, ownMAC, 1, ownMAC, vip1, zero, vip1))
	f.Add(arpFrame(bcast, peerMAC, 1, peerMAC, anyIP, zero, vip1))
	f.Add(mutate(requestFor(vip1), 18, 255, 255))
	f.Add(requestFor(vip1)[:20])
	f.Fuzz(func(t *testing.T, in []byte) {
		pc := newFakeConn()
		c := &conn{pc: pc, mac: ownMAC}
		a := &fakeAnswerer{owned: map[netip.Addr]bool{vip1: true}}
		c.handle(in, a)
		close(pc.out)
		var out []written
		for w := range pc.out {
			out = append(out, w)
		}
		if len(a.targets) > 1 || len(out) > 1 {
			t.Fatalf("one frame gave %d Answer calls and %d writes", len(a.targets), len(out))
		}
		if len(in) >= 12 && bytes.Equal(in[6:12], ownMAC) && len(a.targets) > 0 {
			t.Fatal("own frame handled")
		}
		if len(out) == 0 {
			return
		}
		w := out[0].frame
		// A reply for the owned address, from us, to the requester.
		if len(w) != 42 || !bytes.Equal(w[6:12], ownMAC) || !bytes.Equal(w[12:14], []byte{8, 6}) ||
			!bytes.Equal(w[20:22], []byte{0, 2}) || !bytes.Equal(w[22:28], ownMAC) ||
			!bytes.Equal(w[28:32], vip1.AsSlice()) || !bytes.Equal(w[0:6], w[32:38]) ||
			!bytes.Equal(out[0].dst, w[0:6]) || a.targets[0] != vip1 {
			t.Fatalf("bad answer to % x: % x", in, w)
		}
	})
}
