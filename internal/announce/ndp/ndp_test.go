package ndp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/ipv6"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/internal/responder"
	"github.com/herald-lb/herald/internal/metrics"
)

const ifIndex = 2

var (
	ownMAC  = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	peerMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x02}

	ownLL    = netip.MustParseAddr("fe80::1")
	vip1     = netip.MustParseAddr("fd00:31:250::10")
	vip2     = netip.MustParseAddr("fd00:31:250::11")
	notOwned = netip.MustParseAddr("fd00:31:250::99")
	peerIP   = netip.MustParseAddr("fd00:31:250::2")
	peerLL   = netip.MustParseAddr("fe80::2")
	markerIP = netip.MustParseAddr("fd00:31:250::3")
	snm1     = netip.MustParseAddr("ff02::1:ff00:10")
	snm2     = netip.MustParseAddr("ff02::1:ff00:11")
	all      = netip.MustParseAddr("ff02::1")
	unspec   = netip.IPv6Unspecified()

	sendCM = &ipv6.ControlMessage{HopLimit: 255, Src: ownLL.AsSlice(), IfIndex: ifIndex}
)

// nsBytes builds a neighbor solicitation field by field, independently of
// the code under test; a nil sllaMAC leaves the option out.
func nsBytes(target netip.Addr, sllaMAC net.HardwareAddr) []byte {
	b := []byte{135, 0, 0, 0, 0, 0, 0, 0} // type, code, checksum, reserved
	b = append(b, target.AsSlice()...)
	if sllaMAC != nil {
		b = append(b, 1, 1) // source link-layer address, 8 bytes
		b = append(b, sllaMAC...)
	}
	return b
}

// naBytes is a neighbor advertisement with the target link-layer address
// option.
func naBytes(flags byte, target netip.Addr, mac net.HardwareAddr) []byte {
	b := []byte{136, 0, 0, 0, flags, 0, 0, 0}
	b = append(b, target.AsSlice()...)
	b = append(b, 2, 1)
	return append(b, mac...)
}

const (
	flagSolicited = 0x40
	flagOverride  = 0x20
)

// packetIn is one ICMPv6 message as the socket delivers it.
type packetIn struct {
	b   []byte
	cm  *ipv6.ControlMessage
	src netip.Addr
}

// in is a solicitation for target from peer, as received on the
// interface, to the target's solicited-node group.
func in(target netip.Addr) packetIn {
	return packetIn{nsBytes(target, peerMAC), recvCM(255, mustSNM(target), ifIndex), peerIP}
}

func recvCM(hop int, dst netip.Addr, index int) *ipv6.ControlMessage {
	return &ipv6.ControlMessage{HopLimit: hop, Dst: dst.AsSlice(), IfIndex: index}
}

func mustSNM(a netip.Addr) netip.Addr {
	g, err := ndp.SolicitedNodeMulticast(a)
	if err != nil {
		panic(err)
	}
	return g
}

// written is one message sent, marshalled to bytes.
type written struct {
	b   []byte
	cm  *ipv6.ControlMessage
	dst netip.Addr
}

var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b net.IP) bool { return a.Equal(b) }),
	cmp.AllowUnexported(written{}),
}

// marker is a solicitation for vip2 from another host: its answer tells
// that what was fed before it has been handled.
var (
	marker       = packetIn{nsBytes(vip2, peerMAC), recvCM(255, snm2, ifIndex), markerIP}
	markerAnswer = written{naBytes(flagSolicited|flagOverride, vip2, ownMAC), sendCM, markerIP}
)

// fakeConn is a packetConn fed and read by the test.
type fakeConn struct {
	in     chan packetIn
	out    chan written
	groups chan string
	closed chan struct{}
	once   sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan packetIn), out: make(chan written, 1000), groups: make(chan string, 100), closed: make(chan struct{})}
}

func (c *fakeConn) ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error) {
	select {
	case p := <-c.in:
		// As ndp.Conn does, the source carries the interface as zone.
		return copy(b, p.b), p.cm, p.src.WithZone("eth0"), nil
	case <-c.closed:
		return 0, nil, netip.Addr{}, net.ErrClosed
	}
}

func (c *fakeConn) WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	c.out <- written{b, cm, dst}
	return nil
}

func (c *fakeConn) JoinGroup(g netip.Addr) error  { c.groups <- "join " + g.String(); return nil }
func (c *fakeConn) LeaveGroup(g netip.Addr) error { c.groups <- "leave " + g.String(); return nil }
func (c *fakeConn) Close() error                  { c.once.Do(func() { close(c.closed) }); return nil }

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

// until feeds the marker and returns what was written before its
// answer; the empty message fed after it returns once it is fully handled.
func (c *fakeConn) until(t *testing.T) []written {
	t.Helper()
	c.in <- marker
	var out []written
	for {
		w := c.next(t)
		if cmp.Equal(w, markerAnswer, cmpOpts) {
			c.in <- packetIn{}
			return out
		}
		out = append(out, w)
	}
}

// unsolicited reads n announcements.
func (c *fakeConn) unsolicited(t *testing.T, n int) []written {
	t.Helper()
	var out []written
	for range n {
		w := c.next(t)
		if w.dst != all {
			t.Fatalf("want an announcement to ff02::1, got % x to %s", w.b, w.dst)
		}
		out = append(out, w)
	}
	return out
}

// groupOps returns the group changes recorded so far.
func (c *fakeConn) groupOps() []string {
	var out []string
	for {
		select {
		case g := <-c.groups:
			out = append(out, g)
		default:
			return out
		}
	}
}

type harness struct {
	r       *Responder
	metrics *metrics.L2
	conns   chan *fakeConn
	runErr  chan error
}

func start(t *testing.T, opts Options, listenErr error) *harness {
	t.Helper()
	h := &harness{metrics: metrics.NewL2(prometheus.NewRegistry()), conns: make(chan *fakeConn, 4), runErr: make(chan error, 1)}
	opts.Metrics = h.metrics
	eth0 := ifaces.Interface{Name: "eth0", Index: ifIndex, MAC: ownMAC, Flags: net.FlagUp | net.FlagBroadcast, HasIPv6LinkLocal: true}
	h.r = newResponder(opts, func(ifaces.Interface) (packetConn, netip.Addr, error) {
		if listenErr != nil {
			return nil, netip.Addr{}, listenErr
		}
		c := newFakeConn()
		h.conns <- c
		return c, ownLL.WithZone("eth0"), nil
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
	if err := v.WithLabelValues("ndp", "eth0").Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestUnsolicitedOnAdd(t *testing.T) {
	h := start(t, Options{Gratuitous: 3, GratuitousInterval: time.Millisecond}, nil)
	h.reconcile(t, vip1)
	c := h.conn(t)
	want := written{naBytes(flagOverride, vip1, ownMAC), sendCM, all}
	for i, w := range c.unsolicited(t, 3) {
		if diff := cmp.Diff(want, w, cmpOpts); diff != "" {
			t.Fatalf("announcement %d (-want +got):\n%s", i, diff)
		}
	}
	select {
	case w := <-c.out:
		t.Fatalf("a fourth announcement: % x", w.b)
	case <-time.After(50 * time.Millisecond):
	}
	if got := counter(t, h.metrics.GratuitousSent); got != 3 {
		t.Errorf("GratuitousSent = %v, want 3", got)
	}
}

func TestAnswers(t *testing.T) {
	solicited := func(dst netip.Addr) []written {
		return []written{{naBytes(flagSolicited|flagOverride, vip1, ownMAC), sendCM, dst}}
	}
	tests := []struct {
		name string
		in   packetIn
		want []written
	}{
		{"solicitation to the solicited-node group", in(vip1), solicited(peerIP)},
		{"from a link-local source", packetIn{nsBytes(vip1, peerMAC), recvCM(255, snm1, ifIndex), peerLL}, solicited(peerLL)},
		{"unicast probe to the address itself", packetIn{nsBytes(vip1, peerMAC), recvCM(255, vip1, ifIndex), peerIP}, solicited(peerIP)},
		{"without source link-layer option", packetIn{nsBytes(vip1, nil), recvCM(255, snm1, ifIndex), peerIP}, solicited(peerIP)},
		{
			"duplicate address detection",
			packetIn{nsBytes(vip1, nil), recvCM(255, snm1, ifIndex), unspec},
			[]written{{naBytes(flagOverride, vip1, ownMAC), sendCM, all}},
		},
		{"DAD with a source link-layer option", packetIn{nsBytes(vip1, peerMAC), recvCM(255, snm1, ifIndex), unspec}, nil},
		{"DAD not to the solicited-node group", packetIn{nsBytes(vip1, nil), recvCM(255, vip1, ifIndex), unspec}, nil},
		{"address not owned", in(notOwned), nil},
		{"hop limit not 255 (off-link)", packetIn{nsBytes(vip1, peerMAC), recvCM(254, snm1, ifIndex), peerIP}, nil},
		{"no control message", packetIn{nsBytes(vip1, peerMAC), nil, peerIP}, nil},
		{"arrived on another interface", packetIn{nsBytes(vip1, peerMAC), recvCM(255, snm1, ifIndex+1), peerIP}, nil},
		{"from our own link-local address", packetIn{nsBytes(vip1, nil), recvCM(255, snm1, ifIndex), ownLL}, nil},
		{"our own MAC as source link-layer address", packetIn{nsBytes(vip1, ownMAC), recvCM(255, snm1, ifIndex), peerIP}, nil},
		{"multicast source", packetIn{nsBytes(vip1, peerMAC), recvCM(255, snm1, ifIndex), all}, nil},
		{"code not 0", packetIn{mutate(nsBytes(vip1, peerMAC), 1, 1), recvCM(255, snm1, ifIndex), peerIP}, nil},
		{"multicast target", packetIn{nsBytes(all, peerMAC), recvCM(255, snm1, ifIndex), peerIP}, nil},
		{"an advertisement", packetIn{naBytes(0, vip1, peerMAC), recvCM(255, snm1, ifIndex), peerIP}, nil},
		{"option of length 0", packetIn{mutate(nsBytes(vip1, peerMAC), 25, 0), recvCM(255, snm1, ifIndex), peerIP}, nil},
		{"truncated", packetIn{nsBytes(vip1, nil)[:23], recvCM(255, snm1, ifIndex), peerIP}, nil},
		{"empty", packetIn{nil, recvCM(255, snm1, ifIndex), peerIP}, nil},
	}
	h := start(t, Options{Gratuitous: 1}, nil)
	h.reconcile(t, vip1, vip2)
	c := h.conn(t)
	c.unsolicited(t, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests, responses := counter(t, h.metrics.RequestsReceived), counter(t, h.metrics.ResponsesSent)
			c.in <- tt.in
			if diff := cmp.Diff(tt.want, c.until(t), cmpOpts); diff != "" {
				t.Fatalf("written (-want +got):\n%s", diff)
			}
			// The marker counts one request and one response.
			want := 1 + float64(len(tt.want))
			if got := counter(t, h.metrics.RequestsReceived) - requests; got != want {
				t.Errorf("RequestsReceived +%v, want +%v", got, want)
			}
			if got := counter(t, h.metrics.ResponsesSent) - responses; got != want {
				t.Errorf("ResponsesSent +%v, want +%v", got, want)
			}
		})
	}
}

func mutate(b []byte, offset int, with ...byte) []byte {
	b = bytes.Clone(b)
	copy(b[offset:], with)
	return b
}

func TestRemovalStopsAnswering(t *testing.T) {
	h := start(t, Options{Gratuitous: 1}, nil)
	h.reconcile(t, vip1, vip2)
	c := h.conn(t)
	c.unsolicited(t, 2)
	h.reconcile(t, vip2)
	c.in <- in(vip1)
	if got := c.until(t); len(got) != 0 {
		t.Fatalf("answered for a removed address: % x", got[0].b)
	}
}

func TestGroups(t *testing.T) {
	// a and b share their last 24 bits, hence their solicited-node group.
	a, b, c3 := vip1, netip.MustParseAddr("fd00:31:251::10"), vip2
	h := start(t, Options{Gratuitous: 1}, nil)
	h.reconcile(t, a)
	c := h.conn(t)
	c.unsolicited(t, 1) // written after the join: the join is recorded
	steps := []struct {
		addrs []netip.Addr
		want  []string
	}{
		{[]netip.Addr{a, b}, nil},
		{[]netip.Addr{a, b, c3}, []string{"join " + snm2.String()}},
		{[]netip.Addr{b, c3}, nil}, // b still needs the group
		{[]netip.Addr{c3}, []string{"leave " + snm1.String()}},
		{[]netip.Addr{a, c3}, []string{"join " + snm1.String()}},
		{[]netip.Addr{a, c3}, nil},
	}
	if diff := cmp.Diff([]string{"join " + snm1.String()}, c.groupOps()); diff != "" {
		t.Fatalf("groups on open (-want +got):\n%s", diff)
	}
	for i, s := range steps {
		h.reconcile(t, s.addrs...)
		// Group changes are made before Reconcile returns.
		if diff := cmp.Diff(s.want, c.groupOps()); diff != "" {
			t.Fatalf("step %d %v: groups (-want +got):\n%s", i, s.addrs, diff)
		}
	}
}

func TestPermissionError(t *testing.T) {
	h := start(t, Options{}, fmt.Errorf("listen: %w", os.NewSyscallError("socket", syscall.EPERM)))
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
		"fd00:31:250::10":      true,
		"2001:db8::1":          true,
		"::":                   false,
		"::1":                  false,
		"fe80::1":              false,
		"ff02::1":              false,
		"::ffff:172.31.250.10": false,
		"172.31.250.10":        false,
	} {
		if got := p.Wants(netip.MustParseAddr(s)); got != want {
			t.Errorf("Wants(%s) = %t, want %t", s, got, want)
		}
	}
}

// fakeAnswerer answers for owned and records what Serve asked.
type fakeAnswerer struct {
	owned   map[netip.Addr]bool
	targets []netip.Addr
	probes  []netip.Addr // Conflict calls (always probes, MAC unknown)
}

func (a *fakeAnswerer) Answer(target netip.Addr, reply func() error) {
	a.targets = append(a.targets, target)
	if a.owned[target] {
		_ = reply()
	}
}

func (a *fakeAnswerer) Conflict(target netip.Addr, from net.HardwareAddr, probe bool) {
	if from == nil && probe {
		a.probes = append(a.probes, target)
	}
}

// TestHandleConflicts: duplicate address detection for an address is a
// probe for it (its MAC unknown), and is answered; other solicitations and
// malformed probes claim nothing.
func TestHandleConflicts(t *testing.T) {
	for _, tt := range []struct {
		name  string
		in    packetIn
		probe bool
	}{
		{"duplicate address detection", packetIn{nsBytes(vip1, nil), recvCM(255, snm1, ifIndex), unspec}, true},
		{"DAD with a source link-layer option", packetIn{nsBytes(vip1, peerMAC), recvCM(255, snm1, ifIndex), unspec}, false},
		{"a solicitation", in(vip1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &fakeAnswerer{owned: map[netip.Addr]bool{vip1: true}}
			c := &conn{pc: newFakeConn(), mac: ownMAC, index: ifIndex, self: ownLL, send: sendCM, groups: map[netip.Addr]int{}}
			c.handle(tt.in.b, tt.in.cm, tt.in.src, a)
			if got := len(a.probes) == 1 && a.probes[0] == vip1; got != tt.probe || len(a.probes) > 1 {
				t.Errorf("probes %v, want a probe for %s: %v", a.probes, vip1, tt.probe)
			}
		})
	}
}

var _ responder.Answerer = (*fakeAnswerer)(nil)

func FuzzHandleNDP(f *testing.F) {
	add := func(p packetIn) {
		dst, _ := netip.AddrFromSlice(p.cm.Dst)
		f.Add(p.b, uint8(p.cm.HopLimit), p.src.AsSlice(), dst.AsSlice(), uint8(p.cm.IfIndex))
	}
	add(in(vip1))
	add(in(notOwned))
	add(packetIn{nsBytes(vip1, nil), recvCM(255, snm1, ifIndex), unspec})
	add(packetIn{nsBytes(vip1, ownMAC), recvCM(255, snm1, ifIndex), peerIP})
	add(packetIn{mutate(nsBytes(vip1, peerMAC), 25, 0), recvCM(255, snm1, ifIndex), peerIP})
	add(packetIn{naBytes(0, vip1, peerMAC), recvCM(255, snm1, ifIndex), peerIP})
	f.Fuzz(func(t *testing.T, b []byte, hop uint8, src, dst []byte, index uint8) {
		srcAddr, ok := netip.AddrFromSlice(src)
		if !ok || !srcAddr.Is6() {
			return // the socket only delivers IPv6 sources
		}
		pc := newFakeConn()
		c := &conn{pc: pc, mac: ownMAC, index: ifIndex, self: ownLL, send: sendCM, groups: map[netip.Addr]int{}}
		a := &fakeAnswerer{owned: map[netip.Addr]bool{vip1: true}}
		c.handle(b, &ipv6.ControlMessage{HopLimit: int(hop), Dst: dst, IfIndex: int(index)}, srcAddr, a)
		close(pc.out)
		var out []written
		for w := range pc.out {
			out = append(out, w)
		}
		if len(a.targets) > 1 || len(out) > 1 {
			t.Fatalf("one message gave %d Answer calls and %d writes", len(a.targets), len(out))
		}
		if len(a.targets) > 0 && (hop != 255 || index != ifIndex || srcAddr == ownLL) {
			t.Fatalf("invalid or own solicitation handled: hop %d, index %d, source %s", hop, index, srcAddr)
		}
		if len(out) == 0 {
			return
		}
		w := out[0]
		wantDst, flags := srcAddr, byte(flagSolicited|flagOverride)
		if srcAddr.IsUnspecified() {
			wantDst, flags = all, flagOverride
		}
		want := written{naBytes(flags, vip1, ownMAC), sendCM, wantDst}
		if diff := cmp.Diff(want, w, cmpOpts); diff != "" || a.targets[0] != vip1 {
			t.Fatalf("bad answer to % x from %s (-want +got):\n%s", b, srcAddr, diff)
		}
	})
}

// limitedGroups is a socket that can be in at most max groups (the kernel
// refuses more: optmem_max).
type limitedGroups struct {
	packetConn
	max    int
	in     map[netip.Addr]bool
	events []string
}

func (l *limitedGroups) JoinGroup(g netip.Addr) error {
	if len(l.in) >= l.max {
		return errors.New("cannot allocate memory")
	}
	l.in[g] = true
	l.events = append(l.events, "join "+g.String())
	return nil
}

func (l *limitedGroups) LeaveGroup(g netip.Addr) error {
	delete(l.in, g)
	l.events = append(l.events, "leave "+g.String())
	return nil
}

// A failed join is tried again when a membership frees up, and leaving an
// address whose join failed does not leave the group another address of
// the same group still needs.
func TestGroupJoinsAfterFailure(t *testing.T) {
	a, b, c := netip.MustParseAddr("fd00::a"), netip.MustParseAddr("fd00::b"), netip.MustParseAddr("fd00::c")
	group := func(ip netip.Addr) netip.Addr {
		g, err := ndp.SolicitedNodeMulticast(ip)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	pc := &limitedGroups{max: 2, in: map[netip.Addr]bool{}}
	cn := &conn{pc: pc, groups: map[netip.Addr]int{}, joined: map[netip.Addr]bool{}, unjoined: map[netip.Addr]bool{}}
	for _, ip := range []netip.Addr{a, b} {
		if err := cn.Join(ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := cn.Join(c); err == nil {
		t.Fatal("a third group joined on a socket limited to two")
	}
	if err := cn.Leave(a); err != nil {
		t.Fatal(err)
	}
	if !pc.in[group(c)] || pc.in[group(a)] || !pc.in[group(b)] {
		t.Errorf("groups %v after a left: want b's and c's (c's join tried again)", pc.in)
	}

	// Two addresses of one group; the first's join fails, the second's
	// succeeds; the first leaves: the group stays.
	twin1, twin2 := netip.MustParseAddr("fd00::1:10"), netip.MustParseAddr("fd01::1:10")
	pc2 := &limitedGroups{max: 0, in: map[netip.Addr]bool{}}
	cn2 := &conn{pc: pc2, groups: map[netip.Addr]int{}, joined: map[netip.Addr]bool{}, unjoined: map[netip.Addr]bool{}}
	if err := cn2.Join(twin1); err == nil {
		t.Fatal("joined with no room")
	}
	pc2.max = 1
	if err := cn2.Join(twin2); err != nil {
		t.Fatal(err)
	}
	if err := cn2.Leave(twin1); err != nil {
		t.Fatal(err)
	}
	if !pc2.in[group(twin2)] {
		t.Errorf("group operations %q: the group twin2 needs was left", pc2.events)
	}
}

// A new link-local address on the interface (the old one removed) opens
// the socket again, sending from the new one: the kernel refuses the old
// address as a source.
func TestReopenOnLinkLocalChange(t *testing.T) {
	var ll atomic.Value
	ll.Store(netip.MustParseAddr("fe80::1"))
	eth0 := func() ifaces.Interface {
		return ifaces.Interface{Name: "eth0", Index: ifIndex, MAC: ownMAC, Flags: net.FlagUp | net.FlagBroadcast,
			HasIPv6LinkLocal: true, LinkLocal: ll.Load().(netip.Addr)}
	}
	opened := make(chan netip.Addr, 4)
	r := newResponder(Options{Metrics: metrics.NewL2(prometheus.NewRegistry())}, func(i ifaces.Interface) (packetConn, netip.Addr, error) {
		opened <- i.LinkLocal
		return newFakeConn(), i.LinkLocal, nil
	}, func() ([]ifaces.Interface, error) { return []ifaces.Interface{eth0()}, nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	next := func() netip.Addr {
		t.Helper()
		select {
		case a := <-opened:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no socket opened")
			return netip.Addr{}
		}
	}
	vip := netip.MustParseAddr("fd00:31::200")
	if err := r.Reconcile(map[string][]netip.Addr{"eth0": {vip}}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != netip.MustParseAddr("fe80::1") {
		t.Fatalf("opened with %s", got)
	}
	ll.Store(netip.MustParseAddr("fe80::9"))
	if err := r.Reconcile(map[string][]netip.Addr{"eth0": {vip}}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != netip.MustParseAddr("fe80::9") {
		t.Errorf("opened again with %s, want the new link-local address", got)
	}
}
