package responder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/metrics"
)

// fakeProto is a Protocol for IPv4 addresses whose sockets are fakeConns.
type fakeProto struct {
	mu      sync.Mutex
	opened  chan *fakeConn
	openErr error
}

func (*fakeProto) Name() string            { return "fake" }
func (*fakeProto) Wants(a netip.Addr) bool { return a.Is4() }
func (*fakeProto) Ready(i ifaces.Interface) error {
	if !i.Up() {
		return errors.New("down")
	}
	return nil
}
func (p *fakeProto) setOpenErr(err error) { p.mu.Lock(); p.openErr = err; p.mu.Unlock() }
func (p *fakeProto) Open(i ifaces.Interface) (Conn, error) {
	p.mu.Lock()
	err := p.openErr
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := &fakeConn{iface: i, fail: make(chan error, 1), closed: make(chan struct{}), served: make(chan Answerer, 1), events: make(chan event, 100000)}
	p.opened <- c
	return c, nil
}

// event is something a fakeConn was asked to do.
type event struct {
	op   string // "join", "leave", "announce"
	addr netip.Addr
	at   time.Time
}

type fakeConn struct {
	iface  ifaces.Interface
	mu     sync.Mutex
	forms  []int // the form of every packet sent, in order
	fail   chan error
	closed chan struct{}
	once   sync.Once
	served chan Answerer
	events chan event
}

func (c *fakeConn) Serve(a Answerer) error {
	c.served <- a
	select {
	case err := <-c.fail:
		return err
	case <-c.closed:
		return net.ErrClosed
	}
}

func (c *fakeConn) Forms() int { return 2 }

// Announce records the first form only: an event per address and round.
func (c *fakeConn) Announce(a netip.Addr, form int) error {
	c.mu.Lock()
	c.forms = append(c.forms, form)
	c.mu.Unlock()
	if form == 0 {
		c.events <- event{"announce", a, time.Now()}
	}
	return nil
}

func (c *fakeConn) Join(a netip.Addr) error  { c.events <- event{"join", a, time.Now()}; return nil }
func (c *fakeConn) Leave(a netip.Addr) error { c.events <- event{"leave", a, time.Now()}; return nil }
func (c *fakeConn) Close() error             { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// next returns the conn's next event, failing the test after a timeout.
func (c *fakeConn) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatalf("no event from the conn on %s", c.iface.Name)
		return event{}
	}
}

// quiet fails the test if the conn does anything within d.
func (c *fakeConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-c.events:
		t.Fatalf("unexpected %s %s on %s", e.op, e.addr, c.iface.Name)
	case <-time.After(d):
	}
}

// answerer returns the Answerer the engine passed to Serve.
func (c *fakeConn) answerer(t *testing.T) Answerer {
	t.Helper()
	select {
	case a := <-c.served:
		c.served <- a
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("Serve not called")
		return nil
	}
}

// world is the fake interface list and change signal.
type world struct {
	mu      sync.Mutex
	list    []ifaces.Interface
	changes chan struct{}
	lists   atomic.Int64 // calls to interfaces
}

func (w *world) interfaces() ([]ifaces.Interface, error) {
	w.lists.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.list), nil
}

func (w *world) set(t *testing.T, list ...ifaces.Interface) {
	w.mu.Lock()
	w.list = list
	w.mu.Unlock()
	w.changes <- struct{}{}
}

func iface(name string, index int, up bool) ifaces.Interface {
	i := ifaces.Interface{Name: name, Index: index, MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(index)}, Flags: net.FlagBroadcast}
	if up {
		i.Flags |= net.FlagUp
	}
	return i
}

type harness struct {
	e       *Engine
	proto   *fakeProto
	world   *world
	metrics *metrics.L2
	cancel  context.CancelFunc
	runErr  chan error
}

// start runs an engine over eth0 (index 2) and eth1 (index 3), both up.
func start(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{
		proto:   &fakeProto{opened: make(chan *fakeConn, 10)},
		world:   &world{list: []ifaces.Interface{iface("eth0", 2, true), iface("eth1", 3, true)}, changes: make(chan struct{}, 1)},
		metrics: metrics.NewL2(prometheus.NewRegistry()),
		runErr:  make(chan error, 1),
	}
	opts.Metrics = h.metrics
	opts.Interfaces = h.world.interfaces
	opts.Changes = func(context.Context) (<-chan struct{}, error) { return h.world.changes, nil }
	if opts.ChangeDelay == 0 {
		opts.ChangeDelay = time.Millisecond
	}
	h.e = New(h.proto, opts)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- h.e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.runErr:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) reconcile(t *testing.T, desired map[string][]netip.Addr) {
	t.Helper()
	if err := h.e.Reconcile(desired); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

// opened waits for the next socket the engine opens.
func (h *harness) opened(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-h.proto.opened:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no socket opened")
		return nil
	}
}

func (h *harness) noOpen(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-h.proto.opened:
		t.Fatalf("unexpected socket opened on %s", c.iface.Name)
	case <-time.After(d):
	}
}

func (h *harness) announced() float64 {
	return value(h.metrics.AnnouncedIPs.WithLabelValues("fake"))
}

var (
	ip1 = netip.MustParseAddr("172.31.250.10")
	ip2 = netip.MustParseAddr("172.31.250.11")
	ip6 = netip.MustParseAddr("fd00:31:250::10")
)

// drain collects the conn's events until it has been quiet for quiet.
func drain(c *fakeConn, quiet time.Duration) []event {
	var out []event
	for {
		select {
		case e := <-c.events:
			out = append(out, e)
		case <-time.After(quiet):
			return out
		}
	}
}

// collect collects the conn's events for d.
func collect(c *fakeConn, d time.Duration) []event {
	var out []event
	end := time.After(d)
	for {
		select {
		case e := <-c.events:
			out = append(out, e)
		case <-end:
			return out
		}
	}
}

func ops(events []event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.op+" "+e.addr.String())
	}
	return out
}

func TestReconcileOpensJoinsAndAnnounces(t *testing.T) {
	h := start(t, Options{Gratuitous: 3, GratuitousInterval: 10 * time.Millisecond})
	h.reconcile(t, map[string][]netip.Addr{
		"eth0": {ip1, netip.MustParseAddr("::ffff:172.31.250.11"), ip6, ip1}, // mapped IPv4 counts as IPv4; IPv6 is not wanted
		"eth1": {ip6},                                                        // nothing wanted: no socket
		"eth9": {},                                                           // no addresses: ignored
	})
	c := h.opened(t)
	if c.iface.Name != "eth0" {
		t.Fatalf("opened %s, want eth0", c.iface.Name)
	}
	h.noOpen(t, 50*time.Millisecond)

	got := ops(drain(c, 100*time.Millisecond))
	slices.Sort(got)
	want := []string{
		"announce 172.31.250.10", "announce 172.31.250.10", "announce 172.31.250.10",
		"announce 172.31.250.11", "announce 172.31.250.11", "announce 172.31.250.11",
		"join 172.31.250.10", "join 172.31.250.11",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("conn events (-want +got):\n%s", diff)
	}
	if got := h.announced(); got != 2 {
		t.Errorf("AnnouncedIPs = %v, want 2", got)
	}
	if got := value(h.metrics.GratuitousSent.WithLabelValues("fake", "eth0")); got != 12 {
		t.Errorf("GratuitousSent = %v, want 12 (6 announcements of 2 packets)", got)
	}

	// The same state again changes nothing.
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2, ip1}})
	c.quiet(t, 50*time.Millisecond)
	h.noOpen(t, 10*time.Millisecond)
}

// A takeover of many addresses sends every address's first packet before
// any address's second.
func TestBurstSendsFirstFormsFirst(t *testing.T) {
	h := start(t, Options{Gratuitous: 1})
	var addrs []netip.Addr
	for i := range 5 * announceChunk {
		addrs = append(addrs, netip.AddrFrom4([4]byte{172, 31, byte(i >> 8), byte(i)}))
	}
	h.reconcile(t, map[string][]netip.Addr{"eth0": addrs})
	c := h.opened(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		forms := slices.Clone(c.forms)
		c.mu.Unlock()
		if len(forms) == 2*len(addrs) {
			first := slices.Index(forms, 1)
			if first != len(addrs) || slices.Contains(forms[first:], 0) {
				t.Fatalf("the first reply form is packet %d of %d, want %d (all requests first)", first, len(forms), len(addrs))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d packets sent, want %d", len(forms), 2*len(addrs))
		}
		time.Sleep(time.Millisecond)
	}
	if got := value(h.metrics.GratuitousSent.WithLabelValues("fake", "eth0")); got != float64(2*len(addrs)) {
		t.Errorf("GratuitousSent = %v, want %d", got, 2*len(addrs))
	}
}

func TestAnnouncementSchedule(t *testing.T) {
	const interval = 30 * time.Millisecond
	h := start(t, Options{Gratuitous: 3, GratuitousInterval: interval})
	begin := time.Now()
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	c := h.opened(t)
	if e := c.next(t); e.op != "join" {
		t.Fatalf("first event %s, want join", e.op)
	}
	var times []time.Time
	for range 3 {
		e := c.next(t)
		if e.op != "announce" || e.addr != ip1 {
			t.Fatalf("event %s %s, want announce %s", e.op, e.addr, ip1)
		}
		times = append(times, e.at)
	}
	c.quiet(t, 3*interval)
	if d := times[0].Sub(begin); d > interval {
		t.Errorf("first announcement %v after Reconcile, want at once", d)
	}
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d < interval/2 {
			t.Errorf("announcements %d and %d %v apart, want about %v", i-1, i, d, interval)
		}
	}

	// An address added while others are pending is announced at once.
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	if e := c.next(t); e.op != "join" || e.addr != ip2 {
		t.Fatalf("event %s %s, want join %s", e.op, e.addr, ip2)
	}
	if e := c.next(t); e.op != "announce" || e.addr != ip2 {
		t.Fatalf("event %s %s, want announce %s", e.op, e.addr, ip2)
	}
}

func TestRemovalIsImmediate(t *testing.T) {
	h := start(t, Options{Gratuitous: 1000, GratuitousInterval: 5 * time.Millisecond})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	c := h.opened(t)
	a := c.answerer(t)

	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2}})
	// Leave happened before Reconcile returned.
	var left bool
	for !left {
		select {
		case e := <-c.events:
			if e.op == "leave" {
				if e.addr != ip1 {
					t.Fatalf("left %s, want %s", e.addr, ip1)
				}
				left = true
			}
		default:
			t.Fatal("Reconcile returned before leaving the removed address")
		}
	}
	replied := false
	a.Answer(ip1, func() error { replied = true; return nil })
	if replied {
		t.Fatal("answered for a removed address")
	}
	// Pending announcements of the removed address are dropped.
	for _, e := range collect(c, 30*time.Millisecond) {
		if e.addr == ip1 {
			t.Fatalf("%s %s after removal", e.op, e.addr)
		}
	}
	a.Answer(ip2, func() error { replied = true; return nil })
	if !replied {
		t.Fatal("not answered for a kept address")
	}

	// Removing the last address closes the socket.
	h.reconcile(t, map[string][]netip.Addr{})
	if !c.isClosed() {
		t.Fatal("socket still open with nothing to answer for")
	}
	if got := h.announced(); got != 0 {
		t.Errorf("AnnouncedIPs = %v, want 0", got)
	}
}

func TestAnswerMetrics(t *testing.T) {
	h := start(t, Options{})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	a := h.opened(t).answerer(t)
	a.Answer(ip2, func() error { t.Fatal("reply called for an address not owned"); return nil })
	a.Answer(ip1, func() error { return nil })
	a.Answer(ip1, func() error { return errors.New("send failed") })
	a.Conflict(ip1, net.HardwareAddr{2, 0, 0, 0, 0, 9}, false)
	if got := value(h.metrics.RequestsReceived.WithLabelValues("fake", "eth0")); got != 2 {
		t.Errorf("RequestsReceived = %v, want 2 (only owned targets count)", got)
	}
	if got := value(h.metrics.ResponsesSent.WithLabelValues("fake", "eth0")); got != 1 {
		t.Errorf("ResponsesSent = %v, want 1 (failed sends do not count)", got)
	}
}

func TestSocketFailureReopens(t *testing.T) {
	h := start(t, Options{Gratuitous: 1, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	c := h.opened(t)
	drain(c, 20*time.Millisecond)
	c.fail <- syscall.ENETDOWN
	c2 := h.opened(t)
	if !c.isClosed() {
		t.Error("failed socket not closed")
	}
	// The address held through the outage is answered for again but not
	// announced: the neighbours still have this MAC for it.
	if diff := cmp.Diff([]string{"join 172.31.250.10"}, ops(drain(c2, 50*time.Millisecond))); diff != "" {
		t.Errorf("events on the new socket (-want +got):\n%s", diff)
	}
	if got := h.announced(); got != 1 {
		t.Errorf("AnnouncedIPs = %v, want 1", got)
	}

	// An address taken while the socket was down is announced when it
	// reopens; one lost and taken back meanwhile too.
	h.world.set(t) // the interface goes away
	waitClosed(t, c2)
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2}})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	h.world.set(t, iface("eth0", 2, true), iface("eth1", 3, true))
	c3 := h.opened(t)
	got := ops(drain(c3, 50*time.Millisecond))
	slices.Sort(got)
	if diff := cmp.Diff([]string{"announce 172.31.250.10", "announce 172.31.250.11", "join 172.31.250.10", "join 172.31.250.11"}, got); diff != "" {
		t.Errorf("events after the second outage (-want +got):\n%s", diff)
	}

	// The interface comes back with another MAC: everything is announced.
	h.world.set(t, eth0WithMAC(net.HardwareAddr{2, 0, 0, 0, 0, 0x42}), iface("eth1", 3, true))
	c4 := h.opened(t)
	got = ops(drain(c4, 50*time.Millisecond))
	slices.Sort(got)
	if diff := cmp.Diff([]string{"announce 172.31.250.10", "announce 172.31.250.11", "join 172.31.250.10", "join 172.31.250.11"}, got); diff != "" {
		t.Errorf("events after a MAC change (-want +got):\n%s", diff)
	}
}

func waitClosed(t *testing.T, c *fakeConn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("socket not closed")
		}
		time.Sleep(time.Millisecond)
	}
}

func eth0WithMAC(mac net.HardwareAddr) ifaces.Interface {
	i := iface("eth0", 2, true)
	i.MAC = mac
	return i
}

func TestInterfaceComesAndGoes(t *testing.T) {
	h := start(t, Options{Gratuitous: 1, RetryMin: time.Hour, RetryMax: time.Hour})
	eth0 := iface("eth0", 2, true)
	h.world.set(t, eth0)
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}, "eth1": {ip2}})
	c0 := h.opened(t)
	h.noOpen(t, 30*time.Millisecond) // eth1 is missing; retries are an hour apart

	// A change signal brings eth1 in at once, without waiting for retries.
	h.world.set(t, eth0, iface("eth1", 3, false))
	h.noOpen(t, 30*time.Millisecond) // down: not ready
	h.world.set(t, eth0, iface("eth1", 3, true))
	if c1 := h.opened(t); c1.iface.Name != "eth1" {
		t.Fatalf("opened %s, want eth1", c1.iface.Name)
	}

	// eth0 re-created (new index): its socket is replaced.
	h.world.set(t, iface("eth0", 7, true), iface("eth1", 3, true))
	c0b := h.opened(t)
	if c0b.iface.Index != 7 || !c0.isClosed() {
		t.Fatalf("reopened index %d (old closed: %t), want 7 and the old socket closed", c0b.iface.Index, c0.isClosed())
	}
	if got := h.announced(); got != 2 {
		t.Errorf("AnnouncedIPs = %v, want 2", got)
	}

	// eth0 gone: its socket closes and it no longer counts.
	h.world.set(t, iface("eth1", 3, true))
	deadline := time.Now().Add(5 * time.Second)
	for !c0b.isClosed() || h.announced() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after eth0 went: closed %t, AnnouncedIPs %v; want closed and 1", c0b.isClosed(), h.announced())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetryTimer(t *testing.T) {
	// No change signal: the backoff timer retries the open.
	h := start(t, Options{RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	h.proto.setOpenErr(errors.New("no such device"))
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	h.noOpen(t, 50*time.Millisecond)
	h.proto.setOpenErr(nil)
	h.opened(t)
}

func TestBackoff(t *testing.T) {
	e := New(&fakeProto{}, Options{RetryMin: 100 * time.Millisecond, RetryMax: time.Second})
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, e.backoff(n))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
}

func TestPermissionIsFatal(t *testing.T) {
	h := start(t, Options{})
	h.proto.setOpenErr(fmt.Errorf("listen: %w", os.NewSyscallError("socket", syscall.EPERM)))
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	select {
	case err := <-h.runErr:
		if !errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EPERM) {
			t.Fatalf("Run returned %v, want it to wrap ErrPermission and EPERM", err)
		}
		h.runErr <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return on EPERM")
	}
	if err := h.e.Reconcile(nil); !errors.Is(err, ErrStopped) {
		t.Errorf("Reconcile after Run returned: %v, want ErrStopped", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	proto := &fakeProto{opened: make(chan *fakeConn, 10)}
	w := &world{list: []ifaces.Interface{iface("eth0", 2, true)}}
	e := New(proto, Options{Interfaces: w.interfaces})
	// Reconcile before Run is kept and applied when Run starts.
	if err := e.Reconcile(map[string][]netip.Addr{"eth0": {ip1}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var c *fakeConn
	select {
	case c = <-proto.opened:
	case <-time.After(5 * time.Second):
		t.Fatal("no socket opened for the state set before Run")
	}
	if err := e.Run(ctx); err == nil {
		t.Error("second Run returned nil, want an error")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !c.isClosed() {
		t.Error("socket open after Run returned")
	}
	if err := e.Reconcile(nil); !errors.Is(err, ErrStopped) {
		t.Errorf("Reconcile after Run: %v, want ErrStopped", err)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if c := pb.GetCounter(); c != nil {
		return c.GetValue()
	}
	return pb.GetGauge().GetValue()
}

// TestNoAnswerAfterRemoval hammers Answer while addresses come and go: no
// reply may start once the Reconcile that removed its address returned.
func TestNoAnswerAfterRemoval(t *testing.T) {
	h := start(t, Options{GratuitousInterval: time.Millisecond})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	a := h.opened(t).answerer(t)

	var removed atomic.Bool
	var violations, replies atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				runtime.Gosched()
				a.Answer(ip1, func() error {
					replies.Add(1)
					// A reply in flight when Reconcile starts must hold it up:
					// only after the wait may removal be seen.
					time.Sleep(20 * time.Microsecond)
					if removed.Load() {
						violations.Add(1)
					}
					return nil
				})
			}
		}()
	}
	for range 100 {
		h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2}})
		removed.Store(true)
		time.Sleep(100 * time.Microsecond)
		removed.Store(false)
		h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d replies for a removed address after Reconcile returned", v)
	}
	if replies.Load() == 0 {
		t.Fatal("no replies at all: the test proves nothing")
	}
}

// TestReconcileListsOnlyWhenUseful: with changes watched, a Reconcile that
// only changes addresses on open links does not list the interfaces.
func TestReconcileListsOnlyWhenUseful(t *testing.T) {
	h := start(t, Options{})
	lists := &h.world.lists
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	h.opened(t)
	time.Sleep(20 * time.Millisecond)
	before := lists.Load()
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2}})
	time.Sleep(20 * time.Millisecond)
	if got := lists.Load() - before; got != 0 {
		t.Errorf("%d interface listings for address changes on an open link, want 0", got)
	}
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2}, "eth1": {ip1}})
	h.opened(t)
	if got := lists.Load() - before; got != 1 {
		t.Errorf("%d interface listings for a new interface, want 1", got)
	}
}

// TestGate: while the gate is closed nothing is answered and due
// announcements wait; opened, they go out, but only for addresses still
// owned then. Answers and announcements are asked separately.
func TestGate(t *testing.T) {
	var answers, announcements atomic.Bool
	gate := func(announce bool) bool {
		if announce {
			return announcements.Load()
		}
		return answers.Load()
	}
	h := start(t, Options{Gratuitous: 2, GratuitousInterval: 10 * time.Millisecond, Gate: gate})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	c := h.opened(t)
	a := c.answerer(t)
	if got := ops(drain(c, 150*time.Millisecond)); !slices.Equal(got, []string{"join 172.31.250.10", "join 172.31.250.11"}) && !slices.Equal(got, []string{"join 172.31.250.11", "join 172.31.250.10"}) {
		t.Fatalf("with the gate closed: %v, want the joins only", got)
	}
	a.Answer(ip1, func() error { t.Fatal("answered with the gate closed"); return nil })

	answers.Store(true)
	replied := false
	a.Answer(ip1, func() error { replied = true; return nil })
	if !replied {
		t.Fatal("not answered with the answer gate open")
	}
	c.quiet(t, 100*time.Millisecond) // announcements still held

	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip2}}) // ip1 lost meanwhile
	announcements.Store(true)
	got := ops(drain(c, 150*time.Millisecond))
	want := []string{"leave 172.31.250.10", "announce 172.31.250.11", "announce 172.31.250.11"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after the gate opened (-want +got):\n%s", diff)
	}
}

// TestConflicts: another host's claims of an owned address are reported
// once per run: a probe at once, a use only when it is still seen
// conflictConfirm after the first (a handover's overlap is shorter);
// claims of addresses not owned never; a run starts anew after
// conflictRunGap or once the address stopped being answered; OnConflict
// gets the address, MAC, interface and kind.
func TestConflicts(t *testing.T) {
	var got []Conflict
	h := start(t, Options{OnConflict: func(c Conflict) { got = append(got, c) }})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	l := h.opened(t).answerer(t).(*link)
	mac, other := net.HardwareAddr{2, 0, 0, 0, 0, 9}, net.HardwareAddr{2, 0, 0, 0, 0, 8}
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, s := range []struct {
		name  string
		ip    netip.Addr
		mac   net.HardwareAddr
		probe bool
		when  time.Duration
		want  bool
	}{
		{"a use, first seen", ip1, mac, false, 0, false},
		{"a use, still within a handover's overlap", ip1, mac, false, time.Second, false},
		{"a use, still seen after conflictConfirm", ip1, mac, false, conflictConfirm + time.Second, true},
		{"the same run again", ip1, mac, false, 5 * time.Second, false},
		{"another MAC, a run of its own", ip1, other, false, 5 * time.Second, false},
		{"a probe: at once", ip2, mac, true, 5 * time.Second, true},
		{"a probe again in the run", ip2, mac, true, 6 * time.Second, false},
		{"a probe by a host already reported for its use", ip1, mac, true, 6 * time.Second, true},
		{"not owned", netip.MustParseAddr("172.31.250.99"), mac, true, 6 * time.Second, false},
		{"after a gap: a new run", ip1, mac, false, 5*time.Second + conflictRunGap + time.Second, false},
		{"the new run confirmed", ip1, mac, false, 5*time.Second + conflictRunGap + conflictConfirm + 2*time.Second, true},
	} {
		if r := l.sighting(s.ip, s.mac, s.probe, at(s.when)); r != s.want {
			t.Errorf("%s: reported %v, want %v", s.name, r, s.want)
		}
	}

	// The address handed over and back: what was seen before is gone.
	l.sighting(ip2, other, false, at(0))
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1, ip2}})
	if l.sighting(ip2, other, false, at(conflictConfirm+time.Second)) {
		t.Error("a run from before the address was given up counted")
	}

	// Through the Answerer: a probe reaches OnConflict.
	l.Conflict(ip1, net.HardwareAddr{2, 0, 0, 0, 0, 7}, true)
	want := []Conflict{{IP: ip1, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 7}, Iface: "eth0", Probe: true}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("OnConflict (-want +got):\n%s", diff)
	}
}

func TestConflictsBounded(t *testing.T) {
	h := start(t, Options{})
	h.reconcile(t, map[string][]netip.Addr{"eth0": {ip1}})
	l := h.opened(t).answerer(t).(*link)
	now := time.Now()
	for i := range maxConflicts + 10 {
		l.sighting(ip1, net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}, false, now)
	}
	l.mu.Lock()
	n := len(l.conflicts)
	l.mu.Unlock()
	if n != maxConflicts {
		t.Errorf("%d runs tracked, want at most %d", n, maxConflicts)
	}
	if !l.sighting(ip1, net.HardwareAddr{2, 0, 0, 0, 0, 1}, false, now.Add(conflictConfirm)) {
		t.Error("a tracked MAC is not reported when the table is full")
	}
	if l.sighting(ip1, net.HardwareAddr{2, 0, 0, 0, 0, 1}, true, now) {
		t.Error("a claim not tracked (the table is full) reported")
	}
}
