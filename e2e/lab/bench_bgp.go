package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab/backend"
	"github.com/herald-lb/herald/internal/k8s"
)

// The BGP benchmark (`lab bench bgp`): Herald's speakers announcing to the
// lab's router, measured where it counts, in the router's kernel (`ip
// monitor` timestamps) and in FRR. See BenchBGP.

// Bench objects and addresses: off every lab range and off the layer-2
// bench's filler range (172.31.0.0/17).
const (
	BGPBenchNamespace = "herald-bench-bgp"
	bgpBenchPool      = "bench-bgp"
	bgpBenchFiller    = "bench-bgp-filler"
	bgpBenchAdv       = "bench-bgp"
)

var (
	bgpBenchProbeCIDRs  = []string{"172.31.132.0/24", "fd00:34::/120"}
	bgpBenchFillerCIDRs = []string{"172.31.128.0/22", "fd00:35::/118"}
)

// Targets (issue 5).
const (
	targetBGPCreate  = 70 * time.Millisecond
	targetBGPTerm    = 120 * time.Millisecond
	targetBGPScale   = time.Second
	targetBGPRestart = 1500 * time.Millisecond
	targetBGPRSS     = 50 << 20
)

// BGPBenchOptions configure BenchBGP. Zero values take the defaults.
type BGPBenchOptions struct {
	// Services is the number of filler Services per family (default 1,000).
	Services int
	// Rounds per timed figure and family (default 10).
	Rounds int
	// Workers create and delete Services concurrently (default 16).
	Workers int
	// Families to measure (default both).
	Families []Family
	// KeepServices leaves the bench's Services in place at the end.
	KeepServices bool
	// Parts to run (default all): "create" (create -> route and the
	// controller-stopped floor), "fail" (SIGTERM, SIGKILL, SIGSTOP with
	// BFD, restarts with graceful restart), "scale" (Services filler
	// Services, memory, restarts).
	Parts []string
	// Log receives progress lines (default: discard).
	Log io.Writer
}

func (o *BGPBenchOptions) defaults() {
	if o.Services == 0 {
		o.Services = 1000
	}
	if o.Rounds == 0 {
		o.Rounds = 10
	}
	if o.Workers == 0 {
		o.Workers = 16
	}
	if len(o.Families) == 0 {
		o.Families = []Family{IPv4, IPv6}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// BGPBenchResult is what BenchBGP measured.
type BGPBenchResult struct {
	Started  time.Time     `json:"started"`
	Nodes    int           `json:"nodes"`
	Services int           `json:"services"`
	LoadAvg  []string      `json:"loadavg"`
	Figures  []BenchFigure `json:"figures"`
}

type bgpBench struct {
	l     *Lab
	o     BGPBenchOptions
	cs    kubernetes.Interface
	cl    client.Client
	res   *BGPBenchResult
	nodes []Node
	peers []string // the BGPPeers used (the bench's, or ones already there)
}

func (b *bgpBench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "bench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bgpBench) figure(f BenchFigure) {
	b.res.Figures = append(b.res.Figures, f)
	b.logf("FIGURE %s: %s (target %s) %s %s", f.Name, f.Measured, f.Target, f.Result, f.Detail)
}

// BenchBGP runs the BGP benchmark on the lab and writes its table to out.
// Per family: Rounds Services are created one at a time and timed until
// the router's kernel holds their route with every node as next hop;
// each node's speaker in turn gets SIGTERM (then SIGKILL) and is timed
// until its next hop leaves the kernel route (the router's last reset
// reason tells whether a NOTIFICATION came), then started again; then
// Services filler Services are created at once and timed until FRR has
// every route from every node and the kernel every ECMP route, the
// speakers' memory is read, and a speaker restarted with them (once per round) is timed
// until FRR has all its routes again.
func (l *Lab) BenchBGP(ctx context.Context, o BGPBenchOptions, out io.Writer) (*BGPBenchResult, error) {
	o.defaults()
	if !l.HasSpeaker() {
		return nil, errors.New("the lab runs no speaker (build bin/speaker, then `lab up`)")
	}
	b := &bgpBench{l: l, o: o, nodes: l.Nodes(), res: &BGPBenchResult{Started: time.Now(), Nodes: len(l.state.Nodes), Services: o.Services}}
	b.res.LoadAvg = append(b.res.LoadAvg, "start "+loadAvg())
	if err := b.connect(); err != nil {
		return nil, err
	}
	err := b.run(ctx)
	if !o.KeepServices {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if derr := b.deleteServices(dctx, func(*corev1.Service) bool { return true }); derr != nil {
			b.logf("cleaning up: %v", derr)
		}
		cancel()
	}
	b.res.LoadAvg = append(b.res.LoadAvg, "end "+loadAvg())
	b.print(out)
	if f, ferr := os.Create(filepath.Join(l.Dir, "bench-bgp.json")); ferr == nil {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.res)
		f.Close()
	}
	return b.res, err
}

func (b *bgpBench) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", b.l.Kubeconfig())
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	scheme, err := k8s.NewScheme()
	if err != nil {
		return err
	}
	b.cl, err = client.New(cfg, client.Options{Scheme: scheme})
	return err
}

func (b *bgpBench) run(ctx context.Context) error {
	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	for _, fam := range b.o.Families {
		if b.part("create") {
			if err := b.createRounds(ctx, fam); err != nil {
				return err
			}
			if err := b.floorRounds(ctx, fam); err != nil {
				return err
			}
		}
		if b.part("fail") {
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
				if err := b.failRounds(ctx, fam, sig); err != nil {
					return err
				}
			}
			if err := b.withBFD(ctx, func() error { return b.failRounds(ctx, fam, syscall.SIGSTOP) }); err != nil {
				return err
			}
			if err := b.withGR(ctx, func() error { return b.grRounds(ctx, fam) }); err != nil {
				return err
			}
		}
		if b.part("scale") {
			if err := b.scale(ctx, fam); err != nil {
				return err
			}
		}
	}
	return nil
}

// part reports whether the bench runs part name.
func (b *bgpBench) part(name string) bool {
	return len(b.o.Parts) == 0 || slices.Contains(b.o.Parts, name)
}

// ----- set-up -----

func (b *bgpBench) setup(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: BGPBenchNamespace}}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := b.deleteServices(ctx, func(*corev1.Service) bool { return true }); err != nil {
		return err
	}
	// Peers: the lab's router once per family, unless peers to it exist
	// (two BGPPeers for one session are a configuration error).
	var existing v1beta1.BGPPeerList
	if err := b.cl.List(ctx, &existing, client.InNamespace(v1beta1.Namespace)); err != nil {
		return err
	}
	r := b.l.Router()
	objs := []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: bgpBenchPool, Namespace: v1beta1.Namespace},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: bgpBenchProbeCIDRs, AutoAssign: ptr.To(false)}},
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: bgpBenchFiller, Namespace: v1beta1.Namespace},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: bgpBenchFillerCIDRs, AutoAssign: ptr.To(false)}},
		&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: bgpBenchAdv, Namespace: v1beta1.Namespace},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{bgpBenchPool, bgpBenchFiller}}},
	}
	for _, a := range []netip.Addr{r.IPv4, r.IPv6} {
		name := ""
		for _, p := range existing.Items {
			if p.Spec.PeerAddress == a.String() {
				name = p.Name
			}
		}
		if name == "" {
			name = "bench-router-v4"
			if a.Is6() {
				name = "bench-router-v6"
			}
			objs = append(objs, &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1beta1.Namespace},
				Spec: v1beta1.BGPPeerSpec{MyASN: r.NodeASN, PeerASN: r.ASN, PeerAddress: a.String()}})
		}
		b.peers = append(b.peers, name)
	}
	for _, o := range objs {
		if err := b.cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	b.logf("waiting for every session (peers %v)", b.peers)
	return b.waitFor(ctx, time.Minute, "every node's sessions are Established", func() (bool, string) {
		down, err := b.sessionsDown(ctx)
		return err == nil && len(down) == 0, fmt.Sprintf("down: %v %v", down, err)
	})
}

// sessionsDown lists the node/peer sessions not Established, from the
// BGPSessionStatus objects.
func (b *bgpBench) sessionsDown(ctx context.Context) ([]string, error) {
	var list v1beta1.BGPSessionStatusList
	if err := b.cl.List(ctx, &list, client.InNamespace(v1beta1.Namespace)); err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, s := range list.Items {
		up[s.Status.Node+"/"+s.Status.Peer] = s.Status.State == "Established"
	}
	var down []string
	for _, n := range b.nodes {
		for _, p := range b.peers {
			if !up[n.Name+"/"+p] {
				down = append(down, n.Name+"/"+p)
			}
		}
	}
	return down, nil
}

func (b *bgpBench) waitFor(ctx context.Context, d time.Duration, what string, f func() (bool, string)) error {
	deadline := time.Now().Add(d)
	for {
		ok, why := f()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %s", what, d, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func benchBGPService(name, pool string, fam Family, filler bool) *corev1.Service {
	f := corev1.IPv4Protocol
	if fam == IPv6 {
		f = corev1.IPv6Protocol
	}
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: BGPBenchNamespace,
			Annotations: map[string]string{v1beta1.AnnotationPrefix + v1beta1.AnnotationAddressPool: pool}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			IPFamilyPolicy:                ptr.To(corev1.IPFamilyPolicySingleStack),
			IPFamilies:                    []corev1.IPFamily{f},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if filler {
		s.Annotations[backend.AnnotationNoBackend] = "true"
	}
	return s
}

// deleteServices deletes the bench's Services that match, concurrently,
// and waits until they are gone.
func (b *bgpBench) deleteServices(ctx context.Context, match func(*corev1.Service) bool) error {
	list, err := b.cs.CoreV1().Services(BGPBenchNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var names []string
	for i := range list.Items {
		if match(&list.Items[i]) {
			names = append(names, list.Items[i].Name)
		}
	}
	if err := b.parallel(ctx, len(names), func(ctx context.Context, i int) error {
		err := b.cs.CoreV1().Services(BGPBenchNamespace).Delete(ctx, names[i], metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	return b.waitFor(ctx, 2*time.Minute, "the bench's Services are gone", func() (bool, string) {
		l, err := b.cs.CoreV1().Services(BGPBenchNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		left := 0
		for i := range l.Items {
			if match(&l.Items[i]) {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d left", left)
	})
}

// parallel runs f(i) for i in [0, n) on the bench's workers and returns
// the first error.
func (b *bgpBench) parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	return parallel(ctx, b.o.Workers, 0, n, f)
}

func (b *bgpBench) nodeAddrs(fam Family) []string {
	var out []string
	for _, n := range b.nodes {
		a := n.IPv4
		if fam == IPv6 {
			a = n.IPv6
		}
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// fromNode matches the segments a node sends to the router, over
// either family (a prefix may travel on either session).
func (b *bgpBench) fromNode() func(BGPSegment) bool {
	nodes := map[netip.Addr]bool{}
	for _, n := range b.nodes {
		nodes[n.IPv4], nodes[n.IPv6] = true, true
	}
	return func(s BGPSegment) bool { return nodes[s.Src.Addr()] }
}

func (b *bgpBench) nodeAddr(n Node, fam Family) netip.Addr {
	if fam == IPv6 {
		return n.IPv6
	}
	return n.IPv4
}

// ----- the router's kernel, watched -----

// routeWatch follows the router's kernel routes and next-hop groups with
// `ip -ts monitor`, so a change is timed by the kernel's event, not by
// when a poll saw it.
type routeWatch struct {
	l      *Lab
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []routeEvent
	notify chan struct{}
}

type routeEvent struct {
	at     time.Time
	dst    string // the route's destination as ip prints it; "" for a next-hop event
	delete bool
	nhid   string // the route's next-hop group, when it has one
}

func (b *bgpBench) watchRoutes(ctx context.Context) (*routeWatch, error) {
	pp, err := startPiped(ctx, b.l, HostRouter, false, "ip", "-ts", "monitor", "route", "nexthop")
	if err != nil {
		return nil, err
	}
	cmd, stdout, cancel := pp.cmd, pp.stdout, pp.cancel
	w := &routeWatch{l: b.l, cancel: cancel, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ev, ok := parseMonitorLine(sc.Text()); ok {
				w.mu.Lock()
				w.events = append(w.events, ev)
				w.mu.Unlock()
				select {
				case w.notify <- struct{}{}:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	// ip monitor subscribes before it prints anything: give it a moment.
	time.Sleep(50 * time.Millisecond)
	return w, nil
}

// eventsFor returns the events of prefix's route so far.
func (w *routeWatch) eventsFor(prefix netip.Prefix) []routeEvent {
	dst := prefix.Addr().String()
	if !prefix.IsSingleIP() {
		dst = prefix.String()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []routeEvent
	for _, ev := range w.events {
		if ev.dst == dst {
			out = append(out, ev)
		}
	}
	return out
}

func (w *routeWatch) stop() {
	w.cancel()
	<-w.done
}

// parseMonitorLine parses "[2026-11-22T04:28:25.075200] [Deleted ]DST ..."
// (DST "id N" for a next-hop group).
func parseMonitorLine(line string) (routeEvent, bool) {
	end := strings.IndexByte(line, ']')
	if !strings.HasPrefix(line, "[") || end < 0 {
		return routeEvent{}, false
	}
	at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", line[1:end], time.Local)
	if err != nil {
		return routeEvent{}, false
	}
	f := strings.Fields(line[end+1:])
	ev := routeEvent{at: at}
	if len(f) > 0 && f[0] == "Deleted" {
		ev.delete = true
		f = f[1:]
	}
	if len(f) > 0 && f[0] != "id" {
		ev.dst = f[0]
	}
	if i := slices.Index(f, "nhid"); i >= 0 && i+1 < len(f) && ev.dst != "" {
		ev.nhid = f[i+1]
	}
	return ev, true
}

// waitRoute waits until the kernel route for prefix has exactly want as
// next hops (none: no route) and returns the time of the kernel event
// that made it so: the last event for the prefix (or any next-hop group)
// seen before the route, checked after each event, matched. A route that
// already matches when it is called (its events came before the watch)
// matches at once, timed now.
func (w *routeWatch) waitRoute(ctx context.Context, prefix netip.Prefix, want []string, d time.Duration) (time.Time, error) {
	dst := prefix.Addr().String()
	if !prefix.IsSingleIP() {
		dst = prefix.String()
	}
	deadline := time.After(d)
	seen := 0
	last := time.Now()
	var got []string
	for first := true; ; first = false {
		w.mu.Lock()
		evs := w.events[seen:]
		seen = len(w.events)
		w.mu.Unlock()
		relevant := first
		for _, ev := range evs {
			if ev.dst == dst || ev.dst == "" {
				last, relevant = ev.at, true
			}
		}
		if relevant {
			var err error
			got, err = KernelNextHops(ctx, w.l, prefix)
			if err != nil {
				return time.Time{}, err
			}
			if slices.Equal(got, want) {
				// Events read while checking may be the ones that made
				// it so: take them into account.
				time.Sleep(5 * time.Millisecond)
				w.mu.Lock()
				for _, ev := range w.events[seen:] {
					if ev.dst == dst || ev.dst == "" {
						last = ev.at
					}
				}
				w.mu.Unlock()
				return last, nil
			}
		}
		select {
		case <-w.notify:
		case <-deadline:
			return time.Time{}, fmt.Errorf("kernel route %s via %v after %s, want %v", prefix, got, d, want)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// ----- figures -----

func (b *bgpBench) waitIP(ctx context.Context, w watch.Interface, d time.Duration) (netip.Addr, time.Time, error) {
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return netip.Addr{}, time.Time{}, errors.New("watch closed")
			}
			svc, isSvc := ev.Object.(*corev1.Service)
			if !isSvc || len(svc.Status.LoadBalancer.Ingress) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(svc.Status.LoadBalancer.Ingress[0].IP)
			if err != nil {
				return netip.Addr{}, time.Time{}, err
			}
			return ip, time.Now(), nil
		case <-timeout:
			return netip.Addr{}, time.Time{}, fmt.Errorf("no address after %s", d)
		case <-ctx.Done():
			return netip.Addr{}, time.Time{}, ctx.Err()
		}
	}
}

// createRounds: a Service created, timed until the router's kernel route
// has every node as next hop; then deleted, timed until the route is gone.
func (b *bgpBench) createRounds(ctx context.Context, fam Family) error {
	want := b.nodeAddrs(fam)
	var toKernel, fromCreated, fromIP, toGone []time.Duration
	// Where the time goes: the create call, the first UPDATE at the
	// router (tcpdump on its interface) and FRR's own share after it.
	var calls, toUpdate, inFRR []time.Duration
	capture, err := StartBGPCapture(ctx, b.l, HostRouter, time.Duration(b.o.Rounds)*time.Minute)
	if err != nil {
		b.logf("%s: no capture of the BGP sessions, so no breakdown: %v", fam, err)
	} else {
		defer func() { _ = capture.Stop() }()
	}
	fromNode := b.fromNode()
	for i := range b.o.Rounds {
		name := fmt.Sprintf("probe-%s-%d", fam, i)
		rw, err := b.watchRoutes(ctx)
		if err != nil {
			return err
		}
		sw, err := b.cs.CoreV1().Services(BGPBenchNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			rw.stop()
			return err
		}
		t0 := time.Now()
		_, err = b.cs.CoreV1().Services(BGPBenchNamespace).Create(ctx, benchBGPService(name, bgpBenchPool, fam, false), metav1.CreateOptions{})
		if err != nil {
			rw.stop()
			sw.Stop()
			return err
		}
		tCreated := time.Now()
		calls = append(calls, tCreated.Sub(t0))
		ip, tIP, err := b.waitIP(ctx, sw, 30*time.Second)
		sw.Stop()
		if err != nil {
			rw.stop()
			return fmt.Errorf("Service %s: %w", name, err)
		}
		tRoute, err := rw.waitRoute(ctx, netip.PrefixFrom(ip, ip.BitLen()), want, 20*time.Second)
		if err != nil {
			rw.stop()
			return fmt.Errorf("Service %s: %w", name, err)
		}
		toKernel = append(toKernel, tRoute.Sub(t0))
		fromCreated = append(fromCreated, tRoute.Sub(tCreated))
		fromIP = append(fromIP, tRoute.Sub(tIP))
		update := ""
		if capture != nil {
			if u, ok := FirstBGP(capture.Segments(), t0, func(s BGPSegment) bool { return s.Message() && fromNode(s) }); ok {
				toUpdate = append(toUpdate, u.Time.Sub(t0))
				inFRR = append(inFRR, tRoute.Sub(u.Time))
				update = fmt.Sprintf(", first UPDATE at the router at %s", ms(u.Time.Sub(t0)))
			}
		}

		t1 := time.Now()
		if err := b.cs.CoreV1().Services(BGPBenchNamespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			rw.stop()
			return err
		}
		tGone, err := rw.waitRoute(ctx, netip.PrefixFrom(ip, ip.BitLen()), nil, 20*time.Second)
		rw.stop()
		if err != nil {
			return fmt.Errorf("Service %s deleted: %w", name, err)
		}
		toGone = append(toGone, tGone.Sub(t1))
		b.logf("%s round %d: %s -> all %d next hops in %s (%s after its IP%s), deleted -> gone in %s",
			fam, i+1, ip, len(want), ms(toKernel[i]), ms(fromIP[i]), update, ms(toGone[i]))
	}
	m := median(toKernel)
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: Service created -> route via all %d nodes in the router's kernel (median)", fam, len(want)),
		Measured: ms(m), Target: "<= " + ms(targetBGPCreate), Result: passIf(m <= targetBGPCreate), Detail: durStats(toKernel)})
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   of which after the create call returned (median)", fam), Measured: ms(median(fromCreated)), Detail: durStats(fromCreated)})
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   of which after the Service got its IP (median)", fam), Measured: ms(median(fromIP)), Detail: durStats(fromIP)})
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   the create call alone (API server) (median)", fam), Measured: ms(median(calls)), Detail: durStats(calls)})
	if len(toUpdate) > 0 {
		b.figure(BenchFigure{Name: fmt.Sprintf("%s:   first UPDATE at the router, after the create (median)", fam), Measured: ms(median(toUpdate)),
			Detail: "tcpdump on the router; " + durStats(toUpdate)})
		b.figure(BenchFigure{Name: fmt.Sprintf("%s:   FRR's own time: first UPDATE -> route in its kernel (median)", fam), Measured: ms(median(inFRR)),
			Detail: durStats(inFRR)})
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: Service deleted -> route gone from the router's kernel (median)", fam), Measured: ms(median(toGone)), Detail: durStats(toGone)})
	return nil
}

// floorRounds: the least any controller could cost. With the controller
// stopped, the bench writes each new Service's status itself, as a
// controller that took no time would, timed until the router's kernel
// route has every node as next hop. The addresses are the probe pool's
// last ones, which the controller is not using (createRounds' Services
// take the first).
func (b *bgpBench) floorRounds(ctx context.Context, fam Family) error {
	if err := b.l.StopController(ctx); err != nil {
		return err
	}
	defer func() {
		if err := b.l.StartController(context.WithoutCancel(ctx)); err != nil {
			b.logf("starting the controller again: %v", err)
		}
	}()
	want := b.nodeAddrs(fam)
	pool := netip.MustParsePrefix(bgpBenchProbeCIDRs[0])
	if fam == IPv6 {
		pool = netip.MustParsePrefix(bgpBenchProbeCIDRs[1])
	}
	var toKernel []time.Duration
	for i := range b.o.Rounds {
		name := fmt.Sprintf("floor-%s-%d", fam, i)
		ip := lastAddrs(pool, b.o.Rounds)[i]
		svcs := b.cs.CoreV1().Services(BGPBenchNamespace)
		if _, err := svcs.Create(ctx, benchBGPService(name, bgpBenchPool, fam, false), metav1.CreateOptions{}); err != nil {
			return err
		}
		rw, err := b.watchRoutes(ctx)
		if err != nil {
			return err
		}
		patch := fmt.Sprintf(`{"status":{"loadBalancer":{"ingress":[{"ip":%q,"ipMode":"VIP"}]}}}`, ip)
		t0 := time.Now()
		if _, err := svcs.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			rw.stop()
			return err
		}
		prefix := netip.PrefixFrom(ip, ip.BitLen())
		tRoute, err := rw.waitRoute(ctx, prefix, want, 20*time.Second)
		if err != nil {
			rw.stop()
			return fmt.Errorf("Service %s, status written by the bench: %w", name, err)
		}
		toKernel = append(toKernel, tRoute.Sub(t0))
		if err := svcs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			rw.stop()
			return err
		}
		_, err = rw.waitRoute(ctx, prefix, nil, 20*time.Second)
		rw.stop()
		if err != nil {
			return fmt.Errorf("Service %s deleted: %w", name, err)
		}
		b.logf("%s floor round %d: %s written into the status -> all %d next hops in %s", fam, i+1, ip, len(want), ms(toKernel[i]))
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   status written by the bench, controller stopped -> route (median)", fam), Measured: ms(median(toKernel)),
		Detail: "the least a controller could take; " + durStats(toKernel)})
	return nil
}

// lastAddrs returns the last n addresses of p, ascending.
func lastAddrs(p netip.Prefix, n int) []netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i, host := len(b)-1, p.Addr().BitLen()-p.Bits(); host > 0; i, host = i-1, host-8 {
		b[i] |= byte(1<<min(host, 8) - 1)
	}
	a, _ := netip.AddrFromSlice(b)
	out := make([]netip.Addr, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = a
		a = a.Prev()
	}
	return out
}

// failRounds: a probe Service stays; each node's speaker in turn gets
// sig, timed until its next hop leaves the router's kernel route; the
// router's last reset reason says whether a NOTIFICATION came. The
// speaker is then started again, timed until its next hop is back.
// probeService creates Service name of family fam and waits until the
// router's kernel route to its address has every node as next hop.
func (b *bgpBench) probeService(ctx context.Context, name string, fam Family) (netip.Prefix, error) {
	if _, err := b.cs.CoreV1().Services(BGPBenchNamespace).Create(ctx, benchBGPService(name, bgpBenchPool, fam, false), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return netip.Prefix{}, err
	}
	var ip netip.Addr
	if err := b.waitFor(ctx, 30*time.Second, "Service "+name+" gets its IP", func() (bool, string) {
		s, err := b.cs.CoreV1().Services(BGPBenchNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, fmt.Sprint(err)
		}
		ip, err = netip.ParseAddr(s.Status.LoadBalancer.Ingress[0].IP)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return netip.Prefix{}, err
	}
	prefix := netip.PrefixFrom(ip, ip.BitLen())
	rw, err := b.watchRoutes(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer rw.stop()
	_, err = rw.waitRoute(ctx, prefix, b.nodeAddrs(fam), 30*time.Second)
	return prefix, err
}

func (b *bgpBench) failRounds(ctx context.Context, fam Family, sig syscall.Signal) error {
	name := fmt.Sprintf("probe-%s-fail", fam)
	prefix, err := b.probeService(ctx, name, fam)
	if err != nil {
		return err
	}
	all := b.nodeAddrs(fam)
	kind := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP (frozen), BFD 100 ms x3,"}[sig]
	var gone, back []time.Duration
	notifications := 0
	for i := range b.o.Rounds {
		n := b.nodes[i%len(b.nodes)]
		var rest []string
		for _, a := range all {
			if a != b.nodeAddr(n, fam).String() {
				rest = append(rest, a)
			}
		}
		rw, err := b.watchRoutes(ctx)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := b.l.SignalSpeaker(ctx, n.Name, sig); err != nil {
			rw.stop()
			return err
		}
		tGone, err := rw.waitRoute(ctx, prefix, rest, 20*time.Second)
		if err != nil {
			rw.stop()
			return fmt.Errorf("%s %s: %w", kind, n.Name, err)
		}
		gone = append(gone, tGone.Sub(t0))
		reset := b.lastReset(ctx, b.nodeAddr(n, fam))
		if strings.Contains(reset, "Notification received") || (sig == syscall.SIGSTOP && strings.Contains(b.lastNotification(ctx, b.nodeAddr(n, fam)), "BFD Down")) {
			notifications++
		}
		// Started again (a frozen one thawed).
		t1 := time.Now()
		if sig == syscall.SIGSTOP {
			if err := b.l.SignalSpeaker(ctx, n.Name, syscall.SIGCONT); err != nil {
				rw.stop()
				return err
			}
		} else {
			if err := b.l.StopProc(ctx, ProcSpeaker(n.Name), 5*time.Second); err != nil {
				rw.stop()
				return err
			}
			t1 = time.Now()
			if err := b.l.StartProc(ProcSpeaker(n.Name)); err != nil {
				rw.stop()
				return err
			}
		}
		tBack, err := rw.waitRoute(ctx, prefix, all, 30*time.Second)
		rw.stop()
		if err != nil {
			return fmt.Errorf("%s %s restarted: %w", kind, n.Name, err)
		}
		back = append(back, tBack.Sub(t1))
		b.logf("%s %s round %d (%s): next hop gone in %s (router: %q); started again -> back in %s",
			fam, kind, i+1, n.Name, ms(gone[i]), reset, ms(back[i]))
		if err := b.l.waitProcListening(ctx, ProcSpeaker(n.Name), 30*time.Second); err != nil {
			return err
		}
	}
	m := median(gone)
	f := BenchFigure{Name: fmt.Sprintf("%s: speaker %s -> its next hop gone from the router's kernel (median)", fam, kind),
		Measured: ms(m), Detail: fmt.Sprintf("%s; NOTIFICATION received by the router in %d/%d", durStats(gone), notifications, len(gone))}
	switch sig {
	case syscall.SIGTERM:
		f.Target = "<= " + ms(targetBGPTerm) + " + NOTIFICATION"
		f.Result = passIf(m <= targetBGPTerm && notifications == len(gone))
	case syscall.SIGSTOP:
		f.Detail = fmt.Sprintf("%s; the router sent Cease/BFD Down in %d/%d (hold time 3 s)", durStats(gone), notifications, len(gone))
	}
	b.figure(f)
	again := "started again"
	if sig == syscall.SIGSTOP {
		again = "thawed (SIGCONT)"
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   speaker %s -> its next hop back (median)", fam, again), Measured: ms(median(back)), Detail: durStats(back)})
	return b.deleteServices(ctx, func(s *corev1.Service) bool { return s.Name == name })
}

// grRounds: with graceful restart on the peers, each node's speaker in
// turn is restarted as a rolling update does (SIGTERM, then started
// again). The speaker leaves its sessions for its exit to close, the
// router keeps the node's routes while it restarts: timed is how long the
// route is missing from the router's kernel (from a deletion to the next
// addition, by the kernel's events).
func (b *bgpBench) grRounds(ctx context.Context, fam Family) error {
	name := fmt.Sprintf("probe-%s-gr", fam)
	prefix, err := b.probeService(ctx, name, fam)
	if err != nil {
		return err
	}
	var missing, back []time.Duration
	changed, regrouped := 0, 0
	for i := range b.o.Rounds {
		n := b.nodes[i%len(b.nodes)]
		addr := b.nodeAddr(n, fam)
		rw, t1, err := b.restartWatched(ctx, n)
		if err != nil {
			return err
		}
		// Back: the session up again and the node's path sent again
		// (no longer stale).
		err = b.waitFor(ctx, 30*time.Second, "the router has "+n.Name+"'s path fresh again", func() (bool, string) {
			nb, err := b.neighbor(ctx, addr)
			if err != nil || nb.State != "Established" {
				return false, fmt.Sprintf("session %s %v", nb.State, err)
			}
			stale, err := b.stalePath(ctx, prefix, addr)
			return err == nil && !stale, fmt.Sprintf("stale %v %v", stale, err)
		})
		if err != nil {
			rw.stop()
			return err
		}
		back = append(back, time.Since(t1))
		time.Sleep(100 * time.Millisecond) // a late kernel event
		evs := rw.eventsFor(prefix)
		rw.stop()
		if len(evs) > 0 {
			changed++
		}
		for _, ev := range evs {
			if ev.nhid != evs[0].nhid {
				regrouped++
				break
			}
		}
		m := routeMissing(evs)
		missing = append(missing, m)
		b.logf("%s graceful restart round %d (%s): %d events of the kernel route, route missing %s; path fresh again %s after the start",
			fam, i+1, n.Name, len(evs), us(m), ms(back[i]))
		if err := b.l.waitProcListening(ctx, ProcSpeaker(n.Name), 30*time.Second); err != nil {
			return err
		}
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: speaker restarted (SIGTERM, start), peers with graceful restart -> route missing from the router's kernel (median)", fam),
		Measured: us(median(missing)), Detail: fmt.Sprintf("the kernel route had events in %d/%d rounds (a replace is a delete and an add for IPv6), other next hops in %d; max %s",
			changed, len(missing), regrouped, us(slices.Max(missing)))})
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   speaker started -> its path sent again (no longer stale) (median)", fam), Measured: ms(median(back)), Detail: durStats(back)})
	return b.deleteServices(ctx, func(s *corev1.Service) bool { return s.Name == name })
}

// restartWatched restarts n's speaker as a rolling update does (SIGTERM,
// then started again) with the router's kernel routes watched from
// before; it returns the watch (the caller stops it) and when the speaker
// was started.
func (b *bgpBench) restartWatched(ctx context.Context, n Node) (*routeWatch, time.Time, error) {
	rw, err := b.watchRoutes(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := b.l.StopProc(ctx, ProcSpeaker(n.Name), 5*time.Second); err != nil {
		rw.stop()
		return nil, time.Time{}, err
	}
	t1 := time.Now()
	if err := b.l.StartProc(ProcSpeaker(n.Name)); err != nil {
		rw.stop()
		return nil, time.Time{}, err
	}
	return rw, t1, nil
}

// routeMissing sums the times from each deletion of a route to its next
// addition among evs (one route's events); a deletion not followed by an
// addition counts until the last event.
func routeMissing(evs []routeEvent) time.Duration {
	var total time.Duration
	var since time.Time
	for _, ev := range evs {
		switch {
		case ev.delete && since.IsZero():
			since = ev.at
		case !ev.delete && !since.IsZero():
			total += ev.at.Sub(since)
			since = time.Time{}
		}
	}
	if !since.IsZero() {
		total += evs[len(evs)-1].at.Sub(since)
	}
	return total
}

// us formats d in milliseconds with microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// stalePath reports whether FRR's path for prefix from node addr is
// stale (kept by graceful restart); an error when there is none.
func (b *bgpBench) stalePath(ctx context.Context, prefix netip.Prefix, addr netip.Addr) (bool, error) {
	fam := "ipv4"
	if prefix.Addr().Is6() {
		fam = "ipv6"
	}
	out, err := b.l.Vtysh(ctx, "show bgp "+fam+" unicast "+prefix.String()+" json")
	if err != nil {
		return false, err
	}
	var doc struct {
		Paths []struct {
			Stale bool `json:"stale"`
			Peer  struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return false, err
	}
	for _, p := range doc.Paths {
		if p.Peer.PeerID == addr.String() {
			return p.Stale, nil
		}
	}
	return false, fmt.Errorf("no path for %s from %s", prefix, addr)
}

// updatePeers applies change to each of the bench's BGPPeers.
func (b *bgpBench) updatePeers(ctx context.Context, change func(*v1beta1.BGPPeer)) error {
	for _, p := range b.peers {
		var peer v1beta1.BGPPeer
		if err := b.cl.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: p}, &peer); err != nil {
			return err
		}
		change(&peer)
		if err := b.cl.Update(ctx, &peer); err != nil {
			return err
		}
	}
	return nil
}

// withGR runs f with enableGracefulRestart on the bench's peers (their
// sessions made again with the capability), then takes it off again.
func (b *bgpBench) withGR(ctx context.Context, f func() error) error {
	set := func(on bool) error {
		return b.updatePeers(ctx, func(p *v1beta1.BGPPeer) { p.Spec.EnableGracefulRestart = on })
	}
	wait := func(mode string) error {
		return b.waitFor(ctx, time.Minute, "every node's session has graceful restart mode "+mode+" at the router", func() (bool, string) {
			for _, f := range b.o.Families {
				for _, n := range b.nodes {
					nb, err := b.neighbor(ctx, b.nodeAddr(n, f))
					if err != nil || nb.State != "Established" || nb.GracefulRestart.Remote != mode {
						return false, fmt.Sprintf("%s %s: %s, mode %q %v", n.Name, f, nb.State, nb.GracefulRestart.Remote, err)
					}
				}
			}
			return true, ""
		})
	}
	if err := set(true); err != nil {
		return err
	}
	err := wait("Restart")
	if err == nil {
		err = f()
	}
	if serr := set(false); serr != nil && err == nil {
		err = serr
	}
	if werr := wait("Disable"); werr != nil && err == nil {
		err = werr
	}
	return err
}

// withBFD runs f with a BFDProfile (100 ms, x3) on the bench's peers and
// every node's BFD sessions up; then it takes the profile away again and
// waits for the sessions (the router restarts them when BFD goes).
func (b *bgpBench) withBFD(ctx context.Context, f func() error) error {
	ms100 := uint32(100)
	prof := &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "bench-bfd", Namespace: v1beta1.Namespace},
		Spec: v1beta1.BFDProfileSpec{ReceiveInterval: &ms100, TransmitInterval: &ms100}}
	if err := b.cl.Create(ctx, prof); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	setProfile := func(name string) error {
		return b.updatePeers(ctx, func(p *v1beta1.BGPPeer) { p.Spec.BFDProfile = name })
	}
	if err := setProfile(prof.Name); err != nil {
		return err
	}
	err := b.waitFor(ctx, 30*time.Second, "every node's BFD sessions are Up", func() (bool, string) {
		var list v1beta1.BGPSessionStatusList
		if err := b.cl.List(ctx, &list, client.InNamespace(v1beta1.Namespace)); err != nil {
			return false, err.Error()
		}
		up := 0
		for _, s := range list.Items {
			if s.Status.BFDState == "Up" && s.Status.State == "Established" {
				up++
			}
		}
		return up >= len(b.nodes)*len(b.peers), fmt.Sprintf("%d of %d up", up, len(b.nodes)*len(b.peers))
	})
	if err == nil {
		err = f()
	}
	if rerr := setProfile(""); rerr != nil && err == nil {
		err = rerr
	}
	if derr := b.cl.Delete(ctx, prof); derr != nil && err == nil {
		err = derr
	}
	if werr := b.waitFor(ctx, time.Minute, "every node's sessions are Established again", func() (bool, string) {
		down, err := b.sessionsDown(ctx)
		return err == nil && len(down) == 0, fmt.Sprintf("down: %v %v", down, err)
	}); werr != nil && err == nil {
		err = werr
	}
	return err
}

// routerNeighbor is what the bench reads of FRR's session with a node.
type routerNeighbor struct {
	State            string `json:"bgpState"`
	LastReset        string `json:"lastResetDueTo"`
	LastNotification string `json:"lastNotificationReason"`
	GracefulRestart  struct {
		Remote      string          `json:"remoteGrMode"`
		EORReceived map[string]bool `json:"endOfRibRecv"`
	} `json:"gracefulRestartInfo"`
}

// neighbor reads FRR's session with addr.
func (b *bgpBench) neighbor(ctx context.Context, addr netip.Addr) (routerNeighbor, error) {
	out, err := b.l.Vtysh(ctx, "show bgp neighbors "+addr.String()+" json")
	if err != nil {
		return routerNeighbor{}, err
	}
	var doc map[string]routerNeighbor
	if err := json.Unmarshal(out, &doc); err != nil {
		return routerNeighbor{}, err
	}
	return doc[addr.String()], nil
}

// lastNotification is FRR's last NOTIFICATION on its session with addr.
func (b *bgpBench) lastNotification(ctx context.Context, addr netip.Addr) string {
	n, _ := b.neighbor(ctx, addr)
	return n.LastNotification
}

// lastReset is FRR's reason for the last reset of its session with addr.
func (b *bgpBench) lastReset(ctx context.Context, addr netip.Addr) string {
	n, err := b.neighbor(ctx, addr)
	if err != nil {
		return err.Error()
	}
	return n.LastReset
}

// received returns how many prefixes FRR received from each node's
// session of family fam.
func (b *bgpBench) received(ctx context.Context, fam Family) (map[string]int, error) {
	out, err := b.l.Vtysh(ctx, "show bgp "+string(fam)+" unicast summary json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Peers map[string]struct {
			PfxRcd int    `json:"pfxRcd"`
			State  string `json:"state"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	res := map[string]int{}
	for _, n := range b.nodes {
		res[n.Name] = doc.Peers[b.nodeAddr(n, fam).String()].PfxRcd
	}
	return res, nil
}

// completeKernelRoutes counts the router's kernel BGP routes with every
// node as next hop.
func (b *bgpBench) completeKernelRoutes(ctx context.Context, fam Family) (int, error) {
	flag := "-4"
	if fam == IPv6 {
		flag = "-6"
	}
	out, err := b.l.Exec(ctx, HostRouter, "ip", "-j", flag, "route", "show", "proto", "bgp")
	if err != nil {
		return 0, err
	}
	var routes []struct {
		NextHops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range routes {
		if len(r.NextHops) == len(b.nodes) {
			n++
		}
	}
	return n, nil
}

// speakerCPU reads every running speaker's CPU time (user + system).
func (b *bgpBench) speakerCPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, node := range b.nodes {
		if st, err := b.l.speakerStats(node.Name); err == nil {
			out[node.Name] = st.CPU
		}
	}
	return out
}

// scale: Services filler Services at once; timed from the last one
// getting its IP until FRR has all of them from every node, and until
// the kernel has an ECMP route for each; the speakers' memory; a speaker
// restarted with them once per round, timed until FRR has all its routes again.
func (b *bgpBench) scale(ctx context.Context, fam Family) error {
	n := b.o.Services
	// Routes the router has from before (other Services of the lab's
	// pools): the counts below are on top of them.
	base, err := b.received(ctx, fam)
	if err != nil {
		return err
	}
	baseKernel, err := b.completeKernelRoutes(ctx, fam)
	if err != nil {
		return err
	}
	b.logf("%s: creating %d Services", fam, n)
	// What following them costs the speakers: their CPU, and the status
	// objects they write, from the first create until the kernel has
	// every route.
	req0, reqErr := apiRequests(ctx, b.cs)
	cpu0 := b.speakerCPU()
	t0 := time.Now()
	if err := b.parallel(ctx, n, func(ctx context.Context, i int) error {
		_, err := b.cs.CoreV1().Services(BGPBenchNamespace).Create(ctx,
			benchBGPService(fmt.Sprintf("filler-%s-%05d", fam, i), bgpBenchFiller, fam, true), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	created := time.Since(t0)
	// The time the last Service got its IP, from a poll of the API (every
	// 50 ms: that much is the figure's resolution).
	var lastIP time.Time
	if err := b.waitFor(ctx, 5*time.Minute, "every filler Service has its IP", func() (bool, string) {
		l, err := b.cs.CoreV1().Services(BGPBenchNamespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		got := 0
		for i := range l.Items {
			if strings.HasPrefix(l.Items[i].Name, "filler-"+string(fam)) && len(l.Items[i].Status.LoadBalancer.Ingress) > 0 {
				got++
			}
		}
		lastIP = time.Now()
		return got == n, fmt.Sprintf("%d/%d", got, n)
	}); err != nil {
		return err
	}
	b.logf("%s: %d Services created in %s, all with an IP %s after the first create", fam, n, created.Round(time.Millisecond), lastIP.Sub(t0).Round(time.Millisecond))

	var inFRR, inKernel time.Duration
	frrDone := false
	err = b.waitFor(ctx, 5*time.Minute, "FRR has every filler route from every node, the kernel an ECMP route each", func() (bool, string) {
		if !frrDone {
			rcv, err := b.received(ctx, fam)
			if err != nil {
				return false, err.Error()
			}
			for _, node := range b.nodes {
				if rcv[node.Name] < base[node.Name]+n {
					return false, fmt.Sprintf("FRR received %v", rcv)
				}
			}
			inFRR, frrDone = time.Since(lastIP), true
		}
		c, err := b.completeKernelRoutes(ctx, fam)
		if err != nil {
			return false, err.Error()
		}
		if c < baseKernel+n {
			return false, fmt.Sprintf("%d complete kernel routes", c)
		}
		inKernel = time.Since(lastIP)
		return true, ""
	})
	if err != nil {
		return err
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: %d Services -> all routes from all %d nodes in FRR, after the last got its IP", fam, n, len(b.nodes)),
		Measured: ms(inFRR), Target: "<= " + ms(targetBGPScale), Result: passIf(inFRR <= targetBGPScale),
		Detail: "polled every 50 ms; " + fmt.Sprintf("%d created in %s", n, created.Round(time.Millisecond))})
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   all %d ECMP routes in the router's kernel", fam, n), Measured: ms(inKernel), Detail: "polled"})
	cpu1 := b.speakerCPU()
	var cpu []string
	var maxCPU time.Duration
	for _, node := range b.nodes {
		if c0, ok := cpu0[node.Name]; ok {
			if c1, ok := cpu1[node.Name]; ok {
				cpu = append(cpu, fmt.Sprintf("%s %.1f", node.Name, (c1-c0).Seconds()))
				maxCPU = max(maxCPU, c1-c0)
			}
		}
	}
	writes := "?"
	if req1, err := apiRequests(ctx, b.cs); err == nil && reqErr == nil {
		writes = fmt.Sprintf("%d ServiceBGPStatus and %d BGPSessionStatus writes",
			writesTo(req0, req1, "servicebgpstatuses"), writesTo(req0, req1, "bgpsessionstatuses"))
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   speaker CPU following the %d new Services, until their routes are in the kernel (largest)", fam, n),
		Measured: fmt.Sprintf("%.1f s", maxCPU.Seconds()), Detail: "CPU-s: " + strings.Join(cpu, ", ") + "; " + writes})

	// Memory with the Services (and their status objects) in place.
	var rss []string
	var maxRSS uint64
	for _, node := range b.nodes {
		st, err := b.l.speakerStats(node.Name)
		if err != nil {
			continue
		}
		maxRSS = max(maxRSS, st.RSS)
		rss = append(rss, st.rssDetail(node.Name))
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: speaker RSS with %d Services (largest)", fam, n), Measured: fmt.Sprintf("%.1f MiB", mib(maxRSS)),
		Target: fmt.Sprintf("<= %d MiB", targetBGPRSS>>20), Result: passIf(maxRSS <= targetBGPRSS), Detail: "MiB: " + strings.Join(rss, ", ")})

	if err := b.restartRounds(ctx, fam, base[b.nodes[0].Name]+n, ""); err != nil {
		return err
	}
	// The same with BFD: the router opens the session the moment BFD
	// comes up, instead of on its own timer.
	if err := b.withBFD(ctx, func() error { return b.restartRounds(ctx, fam, base[b.nodes[0].Name]+n, " with BFD") }); err != nil {
		return err
	}
	// With graceful restart the routes stay through the restart.
	if err := b.withGR(ctx, func() error { return b.restartRoundsGR(ctx, fam, base[b.nodes[0].Name]+n) }); err != nil {
		return err
	}

	t2 := time.Now()
	if err := b.deleteServices(ctx, func(s *corev1.Service) bool { return strings.HasPrefix(s.Name, "filler-"+string(fam)) }); err != nil {
		return err
	}
	var withdrawn time.Duration
	if err := b.waitFor(ctx, 5*time.Minute, "every filler route withdrawn", func() (bool, string) {
		rcv, err := b.received(ctx, fam)
		if err != nil {
			return false, err.Error()
		}
		for _, node := range b.nodes {
			if rcv[node.Name] > base[node.Name] {
				return false, fmt.Sprintf("%v", rcv)
			}
		}
		withdrawn = time.Since(t2)
		return true, ""
	}); err != nil {
		return err
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: %d Services deleted -> all withdrawn in FRR", fam, n), Measured: ms(withdrawn),
		Detail: "from the first delete, polled"})
	return nil
}

// restartRounds: a speaker restarted with the Services, once per round:
// from its start until FRR has all its routes again. GoBGP's first
// connection attempt comes at a random moment 1 to 2 s after a peer is
// added, so one restart says little: the median of the rounds. label
// names the variant in the figures ("" or " with BFD").
func (b *bgpBench) restartRounds(ctx context.Context, fam Family, n int, label string) error {
	node := b.nodes[0]
	var backs []time.Duration
	// Which side opened the session again, and when: GoBGP dials at a
	// random moment 1 to 2 s after a peer is added; FRR redials on its
	// own timer, or, with BFD, once BFD is up.
	capture, err := StartBGPCapture(ctx, b.l, HostRouter, time.Duration(b.o.Rounds)*time.Minute)
	if err != nil {
		b.logf("%s: no capture of the BGP sessions, so no breakdown of the restarts: %v", fam, err)
	} else {
		defer func() { _ = capture.Stop() }()
	}
	var openedBySpeaker, openedByRouter, afterOpen []time.Duration
	for round := range b.o.Rounds {
		if err := b.l.StopProc(ctx, ProcSpeaker(node.Name), 5*time.Second); err != nil {
			return err
		}
		if err := b.waitFor(ctx, 30*time.Second, "FRR dropped "+node.Name+"'s routes", func() (bool, string) {
			rcv, err := b.received(ctx, fam)
			return err == nil && rcv[node.Name] == 0, fmt.Sprintf("%v %v", rcv, err)
		}); err != nil {
			return err
		}
		t1 := time.Now()
		if err := b.l.StartProc(ProcSpeaker(node.Name)); err != nil {
			return err
		}
		var back time.Duration
		if err := b.waitFor(ctx, 2*time.Minute, "FRR has "+node.Name+"'s routes again", func() (bool, string) {
			rcv, err := b.received(ctx, fam)
			if err != nil || rcv[node.Name] < n {
				return false, fmt.Sprintf("%v %v", rcv, err)
			}
			back = time.Since(t1)
			return true, ""
		}); err != nil {
			return err
		}
		backs = append(backs, back)
		opened := ""
		if capture != nil {
			if by, at, ok := sessionOpening(capture.Segments(), t1, b.nodeAddr(node, fam)); ok {
				afterOpen = append(afterOpen, back-at)
				if by == b.nodeAddr(node, fam) {
					openedBySpeaker = append(openedBySpeaker, at)
					opened = fmt.Sprintf(" (session opened by the speaker %s after its start)", ms(at))
				} else {
					openedByRouter = append(openedByRouter, at)
					opened = fmt.Sprintf(" (session opened by the router %s after the speaker's start)", ms(at))
				}
			}
		}
		b.logf("%s restart%s round %d: all %d routes back in %s%s", fam, label, round+1, n, ms(back), opened)
		if err := b.l.waitProcListening(ctx, ProcSpeaker(node.Name), 30*time.Second); err != nil {
			return err
		}
	}
	m := median(backs)
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: speaker restarted%s with %d Services -> all its routes back in FRR (median)", fam, label, n),
		Measured: ms(m), Target: "<= " + ms(targetBGPRestart), Result: passIf(m <= targetBGPRestart),
		Detail: "from the process start, polled every 50 ms; " + durStats(backs)})
	if capture != nil {
		b.figure(BenchFigure{Name: fmt.Sprintf("%s:   session opened again by the speaker (median, after its start)", fam), Measured: ms(median(openedBySpeaker)),
			Detail: fmt.Sprintf("%d of %d rounds; ", len(openedBySpeaker), len(backs)) + durStats(openedBySpeaker)})
		b.figure(BenchFigure{Name: fmt.Sprintf("%s:   session opened again by the router (median, after the speaker's start)", fam), Measured: ms(median(openedByRouter)),
			Detail: fmt.Sprintf("%d of %d rounds; ", len(openedByRouter), len(backs)) + durStats(openedByRouter)})
		b.figure(BenchFigure{Name: fmt.Sprintf("%s:   session opened -> all %d routes in FRR (median)", fam, n), Measured: ms(median(afterOpen)),
			Detail: durStats(afterOpen)})
	}
	return nil
}

// restartRoundsGR: a speaker restarted with the Services and graceful
// restart on the peers, once per round. Timed are how long any of its
// routes is missing from the router's kernel (from a deletion to the
// next addition, by the kernel's events; largest over the routes) and
// when the router has its End-of-RIB on the new session: every route sent
// again, the stale ones swept.
func (b *bgpBench) restartRoundsGR(ctx context.Context, fam Family, n int) error {
	node := b.nodes[0]
	addr := b.nodeAddr(node, fam)
	afi := map[Family]string{IPv4: "ipv4Unicast", IPv6: "ipv6Unicast"}[fam]
	var missing, back []time.Duration
	for round := range b.o.Rounds {
		rw, t1, err := b.restartWatched(ctx, node)
		if err != nil {
			return err
		}
		err = b.waitFor(ctx, 2*time.Minute, "the router has "+node.Name+"'s End-of-RIB again", func() (bool, string) {
			nb, err := b.neighbor(ctx, addr)
			return err == nil && nb.State == "Established" && nb.GracefulRestart.EORReceived[afi],
				fmt.Sprintf("%s, End-of-RIB %v %v", nb.State, nb.GracefulRestart.EORReceived, err)
		})
		if err != nil {
			rw.stop()
			return err
		}
		back = append(back, time.Since(t1))
		time.Sleep(100 * time.Millisecond) // a late kernel event
		byDst := map[string][]routeEvent{}
		rw.mu.Lock()
		for _, ev := range rw.events {
			if ev.dst != "" {
				byDst[ev.dst] = append(byDst[ev.dst], ev)
			}
		}
		rw.mu.Unlock()
		rw.stop()
		var worst time.Duration
		for _, evs := range byDst {
			worst = max(worst, routeMissing(evs))
		}
		missing = append(missing, worst)
		b.logf("%s restart with graceful restart round %d: %d routes with kernel events, longest missing %s; End-of-RIB %s after the start",
			fam, round+1, len(byDst), us(worst), ms(back[round]))
		if err := b.l.waitProcListening(ctx, ProcSpeaker(node.Name), 30*time.Second); err != nil {
			return err
		}
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("%s: speaker restarted with graceful restart with %d Services -> longest a route was missing from the router's kernel (median)", fam, n),
		Measured: us(median(missing)), Detail: "max " + us(slices.Max(missing))})
	b.figure(BenchFigure{Name: fmt.Sprintf("%s:   speaker started -> all its routes sent again (the router has its End-of-RIB) (median)", fam),
		Measured: ms(median(back)), Detail: durStats(back)})
	return nil
}

// print writes the table.
func (b *bgpBench) print(w io.Writer) {
	r := b.res
	fmt.Fprintf(w, "\nHerald BGP benchmark: %d nodes, router FRR (hold 3 s), %d round(s) per timed figure and family, %d filler Services per family\n",
		r.Nodes, b.o.Rounds, r.Services)
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s; %d CPUs (a shared machine: figures are medians)\n", strings.Join(r.LoadAvg, "; "), runtime.NumCPU())
	printFigures(w, r.Figures, 12, 26)
}

// sessionOpening finds the connection that carried node's first BGP
// message to the router after t0 and returns who opened it (the source
// of its SYN) and when, after t0.
func sessionOpening(segs []BGPSegment, t0 time.Time, node netip.Addr) (netip.Addr, time.Duration, bool) {
	msg, ok := FirstBGP(segs, t0, func(s BGPSegment) bool { return s.Message() && s.Src.Addr() == node })
	if !ok {
		return netip.Addr{}, 0, false
	}
	syn, ok := FirstBGP(segs, t0, func(s BGPSegment) bool {
		return s.Opening() && (s.Src == msg.Src && s.Dst == msg.Dst || s.Src == msg.Dst && s.Dst == msg.Src)
	})
	if !ok {
		return netip.Addr{}, 0, false
	}
	return syn.Src.Addr(), syn.Time.Sub(t0), true
}
