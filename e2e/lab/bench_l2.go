package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab/backend"
	"github.com/herald-lb/herald/internal/k8s"
)

// The layer-2 benchmark (`lab bench l2`): Herald's speakers, with their
// default settings, under thousands of Services, measured the way a user
// would see them from the L2 client. See BenchL2.

// Bench objects and addresses. The filler pool is off the node segment
// (172.31.0.0/17 is in no lab range): the speakers announce its addresses,
// nobody asks for them. The probe pool is on the segment, between the
// suite's spare pool and the demo pool.
const (
	BenchNamespace  = "herald-bench"
	benchPool       = "bench"
	benchFillerPool = "bench-filler"
	benchL2Adv      = "bench"
	benchFillerName = "filler-%05d"
)

var (
	benchProbeRange = rng("172.31.255.190", "172.31.255.199", "fd00:31::190", "fd00:31::199")
	benchFillerCIDR = "172.31.0.0/17"
)

// Failure kinds of the benchmark.
const (
	FailSIGSTOP  = "sigstop"
	FailLinkDown = "linkdown"
	FailSIGKILL  = "sigkill"
	FailSIGTERM  = "sigterm"
)

// L2BenchOptions configure BenchL2. Zero values take the defaults.
type L2BenchOptions struct {
	// Services is the number of filler Services (default 10,000).
	Services int
	// SpreadIPs is how many of them the spread figure counts (default 300).
	SpreadIPs int
	// Rounds per failure kind and family (default 10).
	Rounds int
	// Workers create and delete Services concurrently (default 16).
	Workers int
	// Kinds and Families to fail (default: all).
	Kinds    []string
	Families []Family
	// ProbeEvery and ProbeTimeout drive the HTTP probe that times the
	// failover (default 20 ms, 200 ms); TermEvery is the probe whose
	// failures are counted across a SIGTERM (default 50 ms: 20/s).
	ProbeEvery, ProbeTimeout, TermEvery time.Duration
	// IdleWindow is how long the speakers' CPU is measured while nothing
	// changes (default 45 s).
	IdleWindow time.Duration
	// ReturnWatch is how long a restored node is watched for addresses
	// moving back to it (default 5 s).
	ReturnWatch time.Duration
	// KeepServices leaves the bench's Services in place at the end.
	KeepServices bool
	// NoFailovers stops after the scale, memory and idle figures (with
	// KeepServices: a lab loaded for profiling).
	NoFailovers bool
	// Reuse keeps the Services an earlier run kept (KeepServices) and
	// skips the spread and scale phases: failovers again without
	// creating 10,000 Services again.
	Reuse bool
	// Log receives progress lines (default: discard).
	Log io.Writer
}

func (o *L2BenchOptions) defaults() {
	if o.Services == 0 {
		o.Services = 10000
	}
	if o.SpreadIPs == 0 {
		o.SpreadIPs = 300
	}
	o.SpreadIPs = min(o.SpreadIPs, o.Services)
	if o.Rounds == 0 {
		o.Rounds = 10
	}
	if o.Workers == 0 {
		o.Workers = 16
	}
	if len(o.Kinds) == 0 {
		o.Kinds = []string{FailSIGSTOP, FailLinkDown, FailSIGKILL, FailSIGTERM}
	}
	if len(o.Families) == 0 {
		o.Families = []Family{IPv4, IPv6}
	}
	if o.ProbeEvery == 0 {
		o.ProbeEvery = 20 * time.Millisecond
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = 200 * time.Millisecond
	}
	if o.TermEvery == 0 {
		o.TermEvery = 50 * time.Millisecond
	}
	if o.IdleWindow == 0 {
		o.IdleWindow = 45 * time.Second
	}
	if o.ReturnWatch == 0 {
		o.ReturnWatch = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Targets (issue 4).
const (
	targetSilent     = time.Second
	targetTerm       = 100 * time.Millisecond
	targetSpread     = 1.3
	targetRSS        = 60 << 20
	targetIdleCPUPct = 1.0 // % of one core
)

// BenchFigure is one line of the benchmark's table.
type BenchFigure struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	Target   string `json:"target,omitempty"`
	// Result is PASS or MISS, empty for figures without a target.
	Result string `json:"result,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// L2BenchRound is one failover round.
type L2BenchRound struct {
	Family Family `json:"family"`
	Kind   string `json:"kind"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Curl is the time from the failure to the first request answered
	// by the new owner; GARP to the first gratuitous ARP / unsolicited NA
	// for the VIP from the new owner (negative: none seen).
	Curl time.Duration `json:"curl"`
	GARP time.Duration `json:"garp"`
	// Probes and Failed count the requests of the failure-counting loop
	// (SIGTERM: 20/s) from the failure to a second after the takeover.
	Probes int `json:"probes"`
	Failed int `json:"failed"`
	// Moved is how many addresses the failed node announced; AllMoved
	// when the survivors announced all of them (negative: not seen).
	Moved    int           `json:"moved"`
	AllMoved time.Duration `json:"allMoved"`
	// MovedBack counts the addresses the restored node announces once
	// the cluster settled; ReturnAnswers the VIP's requests it answered.
	MovedBack     int `json:"movedBack"`
	ReturnAnswers int `json:"returnAnswers"`
	// Restarted: for SIGKILL/SIGTERM, the time from starting the speaker
	// again to its first reconcile (negative: not seen).
	Restarted time.Duration `json:"restarted"`
	Err       string        `json:"err,omitempty"`
}

// L2BenchResult is what BenchL2 measured.
type L2BenchResult struct {
	Started  time.Time      `json:"started"`
	Nodes    int            `json:"nodes"`
	Services int            `json:"services"`
	LoadAvg  []string       `json:"loadavg"`
	Figures  []BenchFigure  `json:"figures"`
	Rounds   []L2BenchRound `json:"rounds"`
}

// l2Bench is one run of BenchL2.
type l2Bench struct {
	l     *Lab
	o     L2BenchOptions
	cs    kubernetes.Interface
	cl    client.Client
	cache cache.Cache
	res   *L2BenchResult
	mac   map[string]string // node -> MAC
	// expV4, expV6: the layer-2 addresses the speakers must announce
	// between them, each exactly once.
	expV4, expV6 int
	members      *memberWatch
}

func (b *l2Bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "bench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *l2Bench) figure(f BenchFigure) {
	b.res.Figures = append(b.res.Figures, f)
	b.logf("FIGURE %s: %s (target %s) %s %s", f.Name, f.Measured, f.Target, f.Result, f.Detail)
}

func passIf(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// BenchL2 runs the layer-2 benchmark on the lab and writes its table to
// out: filler Services are created (the first SpreadIPs of them give the
// spread figure), the speakers' memory and idle CPU are read, then the
// owner of a probe Service is failed Rounds times per kind and family
// while an HTTP probe from the L2 client times the takeover and tcpdump
// sees the new owner's announcements; after each round the node is
// restored and the addresses that move back to it are counted.
func (l *Lab) BenchL2(ctx context.Context, o L2BenchOptions, out io.Writer) (*L2BenchResult, error) {
	o.defaults()
	if !l.HasSpeaker() {
		return nil, errors.New("the lab runs no speaker (build bin/speaker, then `lab up`)")
	}
	if len(l.state.Nodes) < 2 {
		return nil, errors.New("the benchmark needs at least two nodes")
	}
	b := &l2Bench{l: l, o: o, res: &L2BenchResult{Started: time.Now(), Nodes: len(l.state.Nodes), Services: o.Services},
		mac: map[string]string{}, members: newMemberWatch(l)}
	b.res.LoadAvg = append(b.res.LoadAvg, "start "+loadAvg())
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	cctx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	if err := b.startCache(cctx); err != nil {
		return nil, err
	}
	for _, n := range l.state.Nodes {
		mac, err := l.NodeMAC(ctx, n.Name)
		if err != nil {
			return nil, err
		}
		b.mac[n.Name] = strings.ToLower(mac.String())
	}
	err := b.run(ctx)
	if !o.KeepServices {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if derr := b.deleteAll(dctx); derr != nil {
			b.logf("cleaning up: %v", derr)
		}
		cancel()
	}
	b.res.LoadAvg = append(b.res.LoadAvg, "end "+loadAvg())
	b.print(out)
	if f, ferr := os.Create(filepath.Join(l.Dir, "bench-l2.json")); ferr == nil {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.res)
		f.Close()
	}
	return b.res, err
}

func (b *l2Bench) connect(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", b.l.Kubeconfig())
	if err != nil {
		return err
	}
	// The bench creates thousands of objects: its own client must not
	// be the bottleneck.
	cfg.QPS, cfg.Burst = 2000, 4000
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	scheme, err := k8s.NewScheme()
	if err != nil {
		return err
	}
	if b.cl, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	b.cache, err = cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.Service{}:          {Namespaces: map[string]cache.Config{BenchNamespace: {}}},
		&v1beta1.ServiceL2Status{}: {Namespaces: map[string]cache.Config{v1beta1.Namespace: {}}},
	}})
	return err
}

func (b *l2Bench) startCache(ctx context.Context) error {
	for _, o := range []client.Object{&corev1.Service{}, &v1beta1.ServiceL2Status{}} {
		if _, err := b.cache.GetInformer(ctx, o); err != nil {
			return err
		}
	}
	go func() { _ = b.cache.Start(ctx) }()
	if !b.cache.WaitForCacheSync(ctx) {
		return errors.New("bench cache did not sync")
	}
	return nil
}

func (b *l2Bench) run(ctx context.Context) error {
	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	if !b.o.Reuse {
		if err := b.spreadAndScale(ctx); err != nil {
			return err
		}
	}
	probes, err := b.probeServices(ctx)
	if err != nil {
		return fmt.Errorf("probe Services: %w", err)
	}
	if err := b.idle(ctx); err != nil {
		return fmt.Errorf("idle figures: %w", err)
	}
	if b.o.NoFailovers {
		return nil
	}
	for _, fam := range b.o.Families {
		for _, kind := range b.o.Kinds {
			b.failovers(ctx, fam, kind, probes[fam])
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	b.finalStatus(ctx)
	return nil
}

// ----- set-up -----

func (b *l2Bench) setup(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: BenchNamespace}}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	objs := []client.Object{
		&v1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Name: benchPool, Namespace: v1beta1.Namespace},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: benchProbeRange.Addresses(), AutoAssign: ptr.To(false)},
		},
		&v1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Name: benchFillerPool, Namespace: v1beta1.Namespace},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{benchFillerCIDR}, AutoAssign: ptr.To(false)},
		},
		&v1beta1.L2Advertisement{
			ObjectMeta: metav1.ObjectMeta{Name: benchL2Adv, Namespace: v1beta1.Namespace},
			Spec:       v1beta1.L2AdvertisementSpec{IPAddressPools: []string{benchPool, benchFillerPool}},
		},
	}
	for _, o := range objs {
		if err := b.cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	// Leftovers of an earlier run would skew the spread.
	var svcs corev1.ServiceList
	if err := b.cache.List(ctx, &svcs, client.InNamespace(BenchNamespace)); err != nil {
		return err
	}
	if len(svcs.Items) > 0 && b.o.Reuse {
		b.logf("reusing %d Services left by an earlier run", len(svcs.Items))
		return nil
	}
	if len(svcs.Items) > 0 {
		b.logf("deleting %d Services left by an earlier run", len(svcs.Items))
		if err := b.deleteAll(ctx); err != nil {
			return err
		}
		if err := b.waitFor(ctx, 10*time.Minute, "the leftovers' ServiceL2Status objects are gone", func() (bool, string) {
			n := len(b.statusOwners())
			return n == 0, fmt.Sprintf("%d left", n)
		}); err != nil {
			return err
		}
	}
	return nil
}

func fillerService(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf(benchFillerName, i), Namespace: BenchNamespace,
			Annotations: map[string]string{
				v1beta1.AnnotationPrefix + v1beta1.AnnotationAddressPool: benchFillerPool,
				backend.AnnotationNoBackend:                              "true",
			},
		},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			IPFamilyPolicy:                ptr.To(corev1.IPFamilyPolicySingleStack),
			IPFamilies:                    []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// parallel runs f(i) for i in [from, to) on the bench's workers and
// returns the first error.
func (b *l2Bench) parallel(ctx context.Context, from, to int, f func(ctx context.Context, i int) error) error {
	return parallel(ctx, b.o.Workers, from, to, f)
}

func (b *l2Bench) createFillers(ctx context.Context, from, to int) error {
	return b.parallel(ctx, from, to, func(ctx context.Context, i int) error {
		_, err := b.cs.CoreV1().Services(BenchNamespace).Create(ctx, fillerService(i), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create filler %d: %w", i, err)
		}
		return nil
	})
}

// deleteAll deletes every Service of the bench namespace.
func (b *l2Bench) deleteAll(ctx context.Context) error {
	list, err := b.cs.CoreV1().Services(BenchNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(list.Items))
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	return b.parallel(ctx, 0, len(names), func(ctx context.Context, i int) error {
		err := b.cs.CoreV1().Services(BenchNamespace).Delete(ctx, names[i], metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
}

// waitFor polls f every 500 ms until it holds or d passes.
func (b *l2Bench) waitFor(ctx context.Context, d time.Duration, what string, f func() (bool, string)) error {
	deadline := time.Now().Add(d)
	last := time.Now()
	for {
		ok, why := f()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %s", what, d, why)
		}
		if time.Since(last) > 15*time.Second {
			b.logf("waiting: %s: %s", what, why)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ----- observing -----

// benchIPs returns the addresses of the bench's Services, by Service name.
func (b *l2Bench) benchIPs() map[string][]netip.Addr {
	var svcs corev1.ServiceList
	_ = b.cache.List(context.Background(), &svcs, client.InNamespace(BenchNamespace), client.UnsafeDisableDeepCopy)
	out := make(map[string][]netip.Addr, len(svcs.Items))
	for i := range svcs.Items {
		var ips []netip.Addr
		for _, ing := range svcs.Items[i].Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				ips = append(ips, a)
			}
		}
		out[svcs.Items[i].Name] = ips
	}
	return out
}

// statusOwners returns, per Service of the bench namespace, the nodes
// whose ServiceL2Status says they announce it.
func (b *l2Bench) statusOwners() map[string][]string {
	var list v1beta1.ServiceL2StatusList
	_ = b.cache.List(context.Background(), &list, client.UnsafeDisableDeepCopy)
	out := map[string][]string{}
	for i := range list.Items {
		st := &list.Items[i].Status
		if st.ServiceNamespace != BenchNamespace {
			continue
		}
		out[st.ServiceName] = append(out[st.ServiceName], st.Node)
	}
	return out
}

// apiWrites returns the API server's request counters (apiserver_request_total)
// summed by "resource verb".
func (b *l2Bench) apiRequests(ctx context.Context) (map[string]float64, error) {
	return apiRequests(ctx, b.cs)
}

// apiRequests reads the API server's request counters, by "resource[/sub]
// VERB".
func apiRequests(ctx context.Context, cs kubernetes.Interface) (map[string]float64, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		labels := line[len("apiserver_request_total{") : i-1]
		res, verb, sub := promLabel(labels, "resource"), promLabel(labels, "verb"), promLabel(labels, "subresource")
		if sub != "" {
			res += "/" + sub
		}
		out[res+" "+verb] += v
	}
	return out, nil
}

// promLabel returns the value of label name in a Prometheus label list
// (a="x",b="y").
func promLabel(labels, name string) string {
	for off := 0; ; {
		i := strings.Index(labels[off:], name+`="`)
		if i < 0 {
			return ""
		}
		i += off
		if i == 0 || labels[i-1] == ',' {
			rest := labels[i+len(name)+2:]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				return rest[:j]
			}
			return ""
		}
		off = i + 1
	}
}

// statusWrites sums the write requests on ServiceL2Status objects (only
// speakers write them) and on events.
// writesTo counts the writes (not GET, LIST or WATCH) between two
// readings of apiRequests to resources whose name starts with one of
// prefixes (subresources included).
func writesTo(before, after map[string]float64, prefixes ...string) int {
	n := 0
	for k, v := range after {
		res, verb, _ := strings.Cut(k, " ")
		if verb == "GET" || verb == "LIST" || verb == "WATCH" {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(res, p) {
				n += int(v - before[k])
				break
			}
		}
	}
	return n
}

func statusWrites(before, after map[string]float64) (status, events int) {
	return writesTo(before, after, "servicel2statuses"), writesTo(before, after, "events")
}

// announced reads a speaker's herald_l2_announced_ips gauges.
func (b *l2Bench) announced(ctx context.Context, node string) (v4, v6 int, ok bool) {
	n, err := b.l.node(node)
	if err != nil {
		return 0, 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := b.l.Exec(ctx, node, "curl", "-s", "--max-time", "0.5", fmt.Sprintf("http://%s:%d/metrics", n.IPv4, MetricsPort))
	if err != nil {
		return 0, 0, false
	}
	seen := false
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "herald_l2_announced_ips{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		seen = true
		if strings.Contains(line, `protocol="arp"`) {
			v4 = int(v)
		} else if strings.Contains(line, `protocol="ndp"`) {
			v6 = int(v)
		}
	}
	return v4, v6, seen
}

// announcedAll reads every reachable speaker's gauges.
func (b *l2Bench) announcedAll(ctx context.Context, skip string) map[string][2]int {
	out := map[string][2]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range b.l.state.Nodes {
		if n.Name == skip {
			continue
		}
		wg.Go(func() {
			if v4, v6, ok := b.announced(ctx, n.Name); ok {
				mu.Lock()
				out[n.Name] = [2]int{v4, v6}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// expectedAddresses counts the addresses in layer-2 advertised pools held
// by any LoadBalancer Service of the cluster.
func (b *l2Bench) expectedAddresses(ctx context.Context) (v4, v6 int, err error) {
	var pools v1beta1.IPAddressPoolList
	var advs v1beta1.L2AdvertisementList
	if err := b.cl.List(ctx, &pools, client.InNamespace(v1beta1.Namespace)); err != nil {
		return 0, 0, err
	}
	if err := b.cl.List(ctx, &advs, client.InNamespace(v1beta1.Namespace)); err != nil {
		return 0, 0, err
	}
	l2 := map[string]bool{}
	for _, a := range advs.Items {
		if len(a.Spec.IPAddressPools) == 0 && a.Spec.IPAddressPoolSelectors == nil {
			for _, p := range pools.Items {
				l2[p.Name] = true
			}
		}
		for _, p := range a.Spec.IPAddressPools {
			l2[p] = true
		}
	}
	var ranges [][2]netip.Addr
	for _, p := range pools.Items {
		if !l2[p.Name] {
			continue
		}
		for _, s := range p.Spec.Addresses {
			if r, ok := parseAddrRange(s); ok {
				ranges = append(ranges, r)
			}
		}
	}
	svcs, err := b.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, err
	}
	seen := map[netip.Addr]bool{}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, ing := range s.Status.LoadBalancer.Ingress {
			a, err := netip.ParseAddr(ing.IP)
			if err != nil || seen[a] {
				continue
			}
			for _, r := range ranges {
				if a.Compare(r[0]) >= 0 && a.Compare(r[1]) <= 0 {
					seen[a] = true
					if a.Is4() {
						v4++
					} else {
						v6++
					}
					break
				}
			}
		}
	}
	return v4, v6, nil
}

// parseAddrRange parses a pool's address entry: a CIDR or first-last.
func parseAddrRange(s string) ([2]netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		z, err2 := netip.ParseAddr(strings.TrimSpace(last))
		return [2]netip.Addr{a, z}, err1 == nil && err2 == nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return [2]netip.Addr{}, false
	}
	p = p.Masked()
	last := p.Addr().As16()
	bits := p.Bits()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := bits + off; i < 128; i++ {
		last[i/8] |= 1 << (7 - uint(i%8))
	}
	z := netip.AddrFrom16(last)
	if p.Addr().Is4() {
		z = z.Unmap()
	}
	return [2]netip.Addr{p.Addr(), z}, true
}

// procStats are a process's memory and CPU from /proc.
type procStats struct {
	RSS, HWM uint64 // bytes
	// Anon and File split RSS: the process's own memory, and the pages
	// of files it maps (its binary), shared with every process mapping
	// them and reclaimable.
	Anon, File uint64
	CPU        time.Duration // user + system
}

// rssDetail is "name RSS (anon A, file F)" in MiB.
func (s procStats) rssDetail(name string) string {
	return fmt.Sprintf("%s %.1f (anon %.1f, file %.1f)", name, mib(s.RSS), mib(s.Anon), mib(s.File))
}

func readProcStats(pid int) (procStats, error) {
	var s procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.RSS = kb << 10
		case "VmHWM:":
			s.HWM = kb << 10
		case "RssAnon:":
			s.Anon = kb << 10
		case "RssFile:":
			s.File = kb << 10
		}
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	i := bytes.LastIndexByte(st, ')')
	f := strings.Fields(string(st[i+1:]))
	// utime and stime are fields 14 and 15: f[11], f[12], in clock ticks
	// (USER_HZ, 100 on Linux).
	if len(f) > 12 {
		u, _ := strconv.ParseUint(f[11], 10, 64)
		k, _ := strconv.ParseUint(f[12], 10, 64)
		s.CPU = time.Duration(u+k) * 10 * time.Millisecond
	}
	return s, nil
}

// speakerStats reads node's speaker's memory and CPU from /proc.
func (l *Lab) speakerStats(node string) (procStats, error) {
	rec, ok := l.procRecord(ProcSpeaker(node))
	if !ok {
		return procStats{}, fmt.Errorf("speaker-%s: %w", node, ErrNotRunning)
	}
	return readProcStats(rec.Pid)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// ----- phases -----

// spreadAndScale creates the first SpreadIPs fillers and counts their
// owners, then the rest, and measures how the cluster converges.
func (b *l2Bench) spreadAndScale(ctx context.Context) error {
	o := b.o
	b.logf("creating %d filler Services (spread)", o.SpreadIPs)
	if err := b.createFillers(ctx, 0, o.SpreadIPs); err != nil {
		return err
	}
	if err := b.waitStatuses(ctx, o.SpreadIPs, 5*time.Minute); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, n := range b.l.state.Nodes {
		counts[n.Name] = 0
	}
	for _, nodes := range b.statusOwners() {
		for _, n := range nodes {
			counts[n]++
		}
	}
	lo, hi := math.MaxInt, 0
	var parts []string
	for _, n := range b.l.NodeNames() {
		lo, hi = min(lo, counts[n]), max(hi, counts[n])
		parts = append(parts, fmt.Sprintf("%s %d", n, counts[n]))
	}
	ratio := math.Inf(1)
	if lo > 0 {
		ratio = float64(hi) / float64(lo)
	}
	b.figure(BenchFigure{Name: fmt.Sprintf("spread: %d IPs over %d nodes, busiest/least", o.SpreadIPs, len(counts)),
		Measured: fmt.Sprintf("%.2f", ratio), Target: fmt.Sprintf("<= %.1f", targetSpread),
		Result: passIf(ratio <= targetSpread), Detail: strings.Join(parts, ", ")})

	if o.Services <= o.SpreadIPs {
		return nil
	}
	req0, err := b.apiRequests(ctx)
	if err != nil {
		return err
	}
	cpu0 := map[string]time.Duration{}
	for _, n := range b.l.NodeNames() {
		if s, err := b.l.speakerStats(n); err == nil {
			cpu0[n] = s.CPU
		}
	}
	b.logf("creating filler Services %d..%d with %d workers", o.SpreadIPs, o.Services-1, o.Workers)
	t0 := time.Now()
	if err := b.createFillers(ctx, o.SpreadIPs, o.Services); err != nil {
		return err
	}
	created := time.Since(t0)
	b.logf("created in %s", created.Round(time.Millisecond))
	var ipsAt, annAt, statusAt time.Duration
	err = b.waitFor(ctx, 15*time.Minute, "every filler has its IP, is announced, and has its ServiceL2Status", func() (bool, string) {
		ips := b.benchIPs()
		withIP := 0
		for _, a := range ips {
			if len(a) > 0 {
				withIP++
			}
		}
		if ipsAt == 0 && withIP >= o.Services {
			ipsAt = time.Since(t0)
			b.logf("every filler has its IP after %s", ipsAt.Round(time.Millisecond))
		}
		if annAt == 0 && ipsAt != 0 {
			sum := 0
			for _, v := range b.announcedAll(ctx, "") {
				sum += v[0]
			}
			if sum >= o.Services {
				annAt = time.Since(t0)
				b.logf("every filler is announced after %s", annAt.Round(time.Millisecond))
			}
		}
		st := b.statusOwners()
		withStatus := 0
		for name := range ips {
			if len(st[name]) > 0 {
				withStatus++
			}
		}
		if withStatus >= o.Services && statusAt == 0 {
			statusAt = time.Since(t0)
		}
		return ipsAt != 0 && annAt != 0 && statusAt != 0,
			fmt.Sprintf("%d/%d with an IP, %d/%d with a ServiceL2Status", withIP, o.Services, withStatus, o.Services)
	})
	if err != nil {
		return err
	}
	req1, err := b.apiRequests(ctx)
	if err != nil {
		return err
	}
	var cpu []string
	for _, n := range b.l.NodeNames() {
		if s, err := b.l.speakerStats(n); err == nil {
			cpu = append(cpu, fmt.Sprintf("%s %.1f", n, (s.CPU-cpu0[n]).Seconds()))
		}
	}
	sw, ev := statusWrites(req0, req1)
	b.figure(BenchFigure{Name: fmt.Sprintf("scale: %d more Services created (16 workers)", o.Services-o.SpreadIPs),
		Measured: created.Round(100 * time.Millisecond).String()})
	b.figure(BenchFigure{Name: "scale: every filler has its IP (controller)", Measured: ipsAt.Round(100 * time.Millisecond).String()})
	b.figure(BenchFigure{Name: "scale: every filler announced (speakers' gauges)", Measured: annAt.Round(100 * time.Millisecond).String()})
	b.figure(BenchFigure{Name: "scale: every filler has its ServiceL2Status", Measured: statusAt.Round(100 * time.Millisecond).String(),
		Detail: fmt.Sprintf("%d ServiceL2Status writes (%.0f/s), %d event writes; speaker CPU-s: %s",
			sw, float64(sw)/statusAt.Seconds(), ev, strings.Join(cpu, ", "))})
	return nil
}

// waitStatuses waits until n bench Services have exactly one ServiceL2Status.
func (b *l2Bench) waitStatuses(ctx context.Context, n int, d time.Duration) error {
	return b.waitFor(ctx, d, fmt.Sprintf("%d Services have exactly one ServiceL2Status", n), func() (bool, string) {
		one := 0
		for _, nodes := range b.statusOwners() {
			if len(nodes) == 1 {
				one++
			}
		}
		return one >= n, fmt.Sprintf("%d/%d", one, n)
	})
}

// probeServices creates the two Services the failover rounds probe, one
// per family, with a backend on every node.
func (b *l2Bench) probeServices(ctx context.Context) (map[Family]netip.Addr, error) {
	out := map[Family]netip.Addr{}
	for _, fam := range b.o.Families {
		ipFamily := corev1.IPv4Protocol
		if fam == IPv6 {
			ipFamily = corev1.IPv6Protocol
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "probe-" + string(fam), Namespace: BenchNamespace,
				Annotations: map[string]string{v1beta1.AnnotationPrefix + v1beta1.AnnotationAddressPool: benchPool}},
			Spec: corev1.ServiceSpec{
				Type:                          corev1.ServiceTypeLoadBalancer,
				AllocateLoadBalancerNodePorts: ptr.To(false),
				IPFamilyPolicy:                ptr.To(corev1.IPFamilyPolicySingleStack),
				IPFamilies:                    []corev1.IPFamily{ipFamily},
				Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}
		if _, err := b.cs.CoreV1().Services(BenchNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		err := b.waitFor(ctx, time.Minute, "Service "+svc.Name+" gets its IP", func() (bool, string) {
			ips := b.benchIPs()[svc.Name]
			if len(ips) == 1 {
				out[fam] = ips[0]
				return true, ""
			}
			return false, fmt.Sprintf("ingress %v", ips)
		})
		if err != nil {
			return nil, err
		}
		owner, err := b.vipOwner(ctx, out[fam], time.Minute)
		if err != nil {
			return nil, err
		}
		b.logf("probe Service %s: %s, answered by %s", svc.Name, out[fam], owner)
	}
	var err error
	if b.expV4, b.expV6, err = b.expectedAddresses(ctx); err != nil {
		return nil, err
	}
	b.logf("the speakers must announce %d IPv4 and %d IPv6 addresses between them", b.expV4, b.expV6)
	return out, b.settle(ctx, 5*time.Minute, nil)
}

// vipOwner asks the network which node answers for ip: the L2 client
// forgets its neighbour entry and curls it.
func (b *l2Bench) vipOwner(ctx context.Context, ip netip.Addr, d time.Duration) (string, error) {
	var owner string
	fam := "-4"
	if ip.Is6() {
		fam = "-6"
	}
	err := b.waitFor(ctx, d, fmt.Sprintf("a node answers %s", URL(ip, 80)), func() (bool, string) {
		_, _ = b.l.Exec(ctx, HostL2Client, "ip", fam, "neigh", "flush", "to", ip.String(), "dev", "eth0")
		body, err := Curl(ctx, b.l, HostL2Client, ip, 80)
		if err != nil {
			return false, err.Error()
		}
		if _, ok := b.mac[body]; !ok {
			return false, "answered " + body
		}
		owner = body
		return true, ""
	})
	return owner, err
}

// settle waits until every speaker runs and sees every other as a
// member, and the speakers announce every address exactly once (their
// gauges add up to the expected counts), for three polls in a row. It
// returns the gauges through got.
func (b *l2Bench) settle(ctx context.Context, d time.Duration, got *map[string][2]int) error {
	stable := 0
	return b.waitFor(ctx, d, "the cluster settles", func() (bool, string) {
		for _, n := range b.l.NodeNames() {
			if st := b.l.ProcState(ProcSpeaker(n)); st == "" || st == "T" {
				stable = 0
				return false, "speaker-" + n + " is not running"
			}
		}
		if ok, why := b.members.full(); !ok {
			stable = 0
			return false, why
		}
		ann := b.announcedAll(ctx, "")
		if len(ann) != len(b.l.state.Nodes) {
			stable = 0
			return false, fmt.Sprintf("%d speakers report their gauges", len(ann))
		}
		s4, s6 := 0, 0
		for _, v := range ann {
			s4 += v[0]
			s6 += v[1]
		}
		if s4 != b.expV4 || s6 != b.expV6 {
			stable = 0
			return false, fmt.Sprintf("announced %d/%d IPv4, %d/%d IPv6 (%v)", s4, b.expV4, s6, b.expV6, ann)
		}
		if got != nil {
			*got = ann
		}
		stable++
		return stable >= 3, "not stable yet"
	})
}

// idle measures the speakers' memory and their CPU over a window in which
// nothing changes (every ServiceL2Status written first).
func (b *l2Bench) idle(ctx context.Context) error {
	total := len(b.benchIPs())
	if err := b.waitStatuses(ctx, total, 15*time.Minute); err != nil {
		return err
	}
	// Quiet: no ServiceL2Status writes for 5 s.
	prev, err := b.apiRequests(ctx)
	if err != nil {
		return err
	}
	quiet := 0
	if err := b.waitFor(ctx, 5*time.Minute, "ServiceL2Status writes stop", func() (bool, string) {
		cur, err := b.apiRequests(ctx)
		if err != nil {
			return false, err.Error()
		}
		sw, _ := statusWrites(prev, cur)
		prev = cur
		if sw == 0 {
			quiet++
		} else {
			quiet = 0
		}
		return quiet >= 10, fmt.Sprintf("%d writes in the last poll", sw)
	}); err != nil {
		return err
	}
	before := map[string]procStats{}
	for _, n := range b.l.NodeNames() {
		s, err := b.l.speakerStats(n)
		if err != nil {
			return err
		}
		before[n] = s
	}
	req0, _ := b.apiRequests(ctx)
	b.logf("idle window: %s", b.o.IdleWindow)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.o.IdleWindow):
	}
	req1, _ := b.apiRequests(ctx)
	var maxRSS, maxHWM uint64
	maxCPU := 0.0
	var rss, hwm, cpu []string
	for _, n := range b.l.NodeNames() {
		s, err := b.l.speakerStats(n)
		if err != nil {
			return err
		}
		maxRSS, maxHWM = max(maxRSS, s.RSS), max(maxHWM, s.HWM)
		used := (s.CPU - before[n].CPU).Seconds()
		maxCPU = max(maxCPU, used)
		rss = append(rss, s.rssDetail(n))
		hwm = append(hwm, fmt.Sprintf("%s %.1f", n, mib(s.HWM)))
		cpu = append(cpu, fmt.Sprintf("%s %.2f", n, used))
	}
	sw, ev := statusWrites(req0, req1)
	b.figure(BenchFigure{Name: fmt.Sprintf("speaker VmRSS with %d Services (max of %d)", total, len(rss)),
		Measured: fmt.Sprintf("%.1f MiB", mib(maxRSS)), Target: "<= 60 MiB", Result: passIf(maxRSS <= targetRSS), Detail: "MiB: " + strings.Join(rss, ", ")})
	b.figure(BenchFigure{Name: "speaker VmHWM (peak RSS, since start)", Measured: fmt.Sprintf("%.1f MiB", mib(maxHWM)),
		Target: "<= 60 MiB", Result: passIf(maxHWM <= targetRSS), Detail: strings.Join(hwm, ", ")})
	pct := 100 * maxCPU / b.o.IdleWindow.Seconds()
	b.figure(BenchFigure{Name: fmt.Sprintf("speaker CPU while idle (%s window, max)", b.o.IdleWindow),
		Measured: fmt.Sprintf("%.2f CPU-s (%.2f%% of a core)", maxCPU, pct), Target: fmt.Sprintf("<= %.0f%% of a core", targetIdleCPUPct),
		Result: passIf(pct <= targetIdleCPUPct), Detail: strings.Join(cpu, ", ") + fmt.Sprintf("; API writes meanwhile: %d ServiceL2Status, %d events", sw, ev)})
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// ----- failovers -----

func (b *l2Bench) failovers(ctx context.Context, fam Family, kind string, ip netip.Addr) {
	var rounds []L2BenchRound
	for r := range b.o.Rounds {
		if ctx.Err() != nil {
			return
		}
		rd := b.round(ctx, fam, kind, ip)
		b.logf("round %d %s %s: %s -> %s curl %s garp %s failed %d/%d moved %d (all after %s) moved back %d, return answers %d, restart %s %s",
			r+1, kind, fam, rd.From, rd.To, ms(rd.Curl), ms(rd.GARP), rd.Failed, rd.Probes, rd.Moved, ms(rd.AllMoved),
			rd.MovedBack, rd.ReturnAnswers, ms(rd.Restarted), rd.Err)
		rounds = append(rounds, rd)
		b.res.Rounds = append(b.res.Rounds, rd)
	}
	b.summarize(fam, kind, rounds)
}

func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

// round fails the owner of ip once, measures, restores and settles.
func (b *l2Bench) round(ctx context.Context, fam Family, kind string, ip netip.Addr) (rd L2BenchRound) {
	rd = L2BenchRound{Family: fam, Kind: kind, Curl: -1, GARP: -1, AllMoved: -1, Restarted: -1}
	fail := func(format string, args ...any) L2BenchRound {
		rd.Err = fmt.Sprintf(format, args...)
		return rd
	}
	owner, err := b.vipOwner(ctx, ip, time.Minute)
	if err != nil {
		return fail("%v", err)
	}
	rd.From = owner
	if v4, v6, ok := b.announced(ctx, owner); ok {
		rd.Moved = v4 + v6
	}
	capture, err := StartCapture(ctx, b.l, HostL2Client, AnnouncementFilter(ip), 100000, 10*time.Minute)
	if err != nil {
		return fail("%v", err)
	}
	defer capture.Stop()
	url := URL(ip, 80)
	fast, err := b.l.StartHTTPProbe(ctx, HostL2Client, url, b.o.ProbeEvery, b.o.ProbeTimeout)
	if err != nil {
		return fail("%v", err)
	}
	defer fast.Stop()
	counted := fast
	if kind == FailSIGTERM {
		if counted, err = b.l.StartHTTPProbe(ctx, HostL2Client, url, b.o.TermEvery, b.o.ProbeTimeout); err != nil {
			return fail("%v", err)
		}
		defer counted.Stop()
	}
	// The client talks to the owner (its neighbour entry names it) on
	// both loops before anything fails.
	for _, p := range []*HTTPProbe{fast, counted} {
		n := 0
		if _, ok := p.WaitFor(ctx, 10*time.Second, func(r ProbeResult) bool {
			if r.OK && r.Body == owner {
				n++
			} else {
				n = 0
			}
			return n >= 5
		}); !ok {
			return fail("the probe does not reach %s through %s", owner, url)
		}
	}

	t0 := time.Now()
	if err := b.fail(ctx, kind, owner); err != nil {
		return fail("%s %s: %v", kind, owner, err)
	}
	restored := false
	defer func() {
		if !restored {
			if err := b.restore(context.Background(), kind, owner); err != nil {
				b.logf("restore %s after %s: %v", owner, kind, err)
			}
		}
	}()
	r, ok := fast.WaitFor(ctx, 30*time.Second, func(r ProbeResult) bool {
		return r.OK && r.Body != owner && r.End.After(t0)
	})
	if !ok {
		return fail("no node but %s answered %s within 30s", owner, url)
	}
	rd.To, rd.Curl = r.Body, r.End.Sub(t0)
	takeover := r.End

	// Failures across the failure: from t0 to a second after the takeover.
	time.Sleep(time.Until(takeover.Add(time.Second)))
	for _, pr := range counted.Results() {
		if pr.Start.Before(t0) || pr.Start.After(takeover.Add(time.Second)) {
			continue
		}
		rd.Probes++
		if !pr.OK {
			rd.Failed++
		}
	}
	if counted != fast {
		counted.Stop()
	}
	packets := capture.Packets()
	if p, ok := FirstAnnouncement(packets, ip, b.mac[rd.To], t0); ok {
		rd.GARP = p.Time.Sub(t0)
	}

	// Every address of the failed node moves to the survivors.
	if err := b.waitFor(ctx, 2*time.Minute, "the survivors announce every address", func() (bool, string) {
		ann := b.announcedAll(ctx, owner)
		s4, s6 := 0, 0
		for _, v := range ann {
			s4 += v[0]
			s6 += v[1]
		}
		return s4 == b.expV4 && s6 == b.expV6, fmt.Sprintf("%d/%d IPv4, %d/%d IPv6", s4, b.expV4, s6, b.expV6)
	}); err != nil {
		b.logf("%v", err)
	} else {
		rd.AllMoved = time.Since(t0)
	}

	// Restore, then watch the returned node.
	tR := time.Now()
	restored = true
	if err := b.restore(ctx, kind, owner); err != nil {
		return fail("restore: %v", err)
	}
	if kind == FailSIGKILL || kind == FailSIGTERM {
		start := time.Now()
		if err := b.waitFor(ctx, 2*time.Minute, "the restarted speaker reconciles", func() (bool, string) {
			_, _, ok := b.announced(ctx, owner)
			return ok, "no gauge yet"
		}); err == nil {
			rd.Restarted = time.Since(start)
		}
	}
	select {
	case <-ctx.Done():
		return fail("%v", ctx.Err())
	case <-time.After(time.Until(tR.Add(b.o.ReturnWatch))):
	}
	var ann map[string][2]int
	if err := b.settle(ctx, 3*time.Minute, &ann); err != nil {
		return fail("%v", err)
	}
	rd.MovedBack = ann[owner][0] + ann[owner][1]
	for _, pr := range fast.Stop() {
		if pr.OK && pr.Body == owner && pr.Start.After(tR) {
			rd.ReturnAnswers++
		}
	}
	if _, err := capture.Stop(); err != nil {
		b.logf("capture: %v", err)
	}
	return rd
}

// fail makes node fail in the way kind says.
func (b *l2Bench) fail(ctx context.Context, kind, node string) error {
	switch kind {
	case FailSIGSTOP:
		return b.l.SignalSpeaker(ctx, node, syscall.SIGSTOP)
	case FailSIGKILL:
		return b.l.SignalSpeaker(ctx, node, syscall.SIGKILL)
	case FailSIGTERM:
		return b.l.SignalSpeaker(ctx, node, syscall.SIGTERM)
	case FailLinkDown:
		return b.l.LinkDown(ctx, node)
	}
	return fmt.Errorf("unknown failure kind %q", kind)
}

// restore repairs node after kind.
func (b *l2Bench) restore(ctx context.Context, kind, node string) error {
	switch kind {
	case FailSIGSTOP:
		return b.l.SignalSpeaker(ctx, node, syscall.SIGCONT)
	case FailLinkDown:
		return b.l.LinkUp(ctx, node)
	case FailSIGTERM:
		// Let it finish its graceful exit first.
		_ = pollUntil(ctx, 15*time.Second, func() (bool, error) { return !b.l.ProcRunning(ProcSpeaker(node)), nil })
		fallthrough
	case FailSIGKILL:
		return b.l.RestartProc(ctx, ProcSpeaker(node))
	}
	return fmt.Errorf("unknown failure kind %q", kind)
}

// summarize turns a kind's rounds into figures.
func (b *l2Bench) summarize(fam Family, kind string, rounds []L2BenchRound) {
	var curls, garps, allMoved, restarts []time.Duration
	failed, probes, movedBack, maxBack, answers, errs, noGARP := 0, 0, 0, 0, 0, 0, 0
	var errText []string
	for _, r := range rounds {
		if r.Err != "" {
			errs++
			errText = append(errText, r.Err)
		}
		if r.Curl >= 0 {
			curls = append(curls, r.Curl)
			if r.GARP >= 0 {
				garps = append(garps, r.GARP)
			} else {
				noGARP++
			}
		}
		if r.AllMoved >= 0 {
			allMoved = append(allMoved, r.AllMoved)
		}
		if r.Restarted >= 0 {
			restarts = append(restarts, r.Restarted)
		}
		failed += r.Failed
		probes += r.Probes
		movedBack += r.MovedBack
		maxBack = max(maxBack, r.MovedBack)
		answers += r.ReturnAnswers
	}
	target := targetSilent
	if kind == FailSIGTERM {
		target = targetTerm
	}
	name := fmt.Sprintf("failover %s %s", kind, fam)
	med := median(curls)
	detail := durStats(curls)
	if errs > 0 {
		detail += fmt.Sprintf("; %d round(s) failed: %s", errs, strings.Join(uniq(errText), "; "))
	}
	b.figure(BenchFigure{Name: name + ": curl via new owner (median)", Measured: ms(med), Target: "<= " + ms(target),
		Result: passIf(med >= 0 && med <= target && errs == 0), Detail: detail})
	gd := durStats(garps)
	if noGARP > 0 {
		gd += fmt.Sprintf("; no announcement seen in %d round(s)", noGARP)
	}
	b.figure(BenchFigure{Name: name + ": first gratuitous " + map[Family]string{IPv4: "ARP", IPv6: "NA"}[fam] + " (median)",
		Measured: ms(median(garps)), Detail: gd})
	if kind == FailSIGTERM {
		b.figure(BenchFigure{Name: name + fmt.Sprintf(": failed requests at %.0f/s", float64(time.Second)/float64(b.o.TermEvery)),
			Measured: fmt.Sprintf("%d of %d", failed, probes), Target: "0", Result: passIf(failed == 0 && probes > 0)})
	}
	b.figure(BenchFigure{Name: name + ": IPs moved back on return (max)", Measured: strconv.Itoa(maxBack), Target: "0",
		Result: passIf(maxBack == 0 && len(rounds) > errs), Detail: fmt.Sprintf("sum %d over %d rounds; VIP requests answered by the returned node: %d", movedBack, len(rounds), answers)})
	if len(allMoved) > 0 {
		moved := 0
		for _, r := range rounds {
			moved += r.Moved
		}
		b.figure(BenchFigure{Name: name + ": all of the node's IPs announced elsewhere (median)", Measured: ms(median(allMoved)),
			Detail: fmt.Sprintf("%s; %d IPs per round on average", durStats(allMoved), moved/max(1, len(rounds)))})
	}
	if len(restarts) > 0 {
		b.figure(BenchFigure{Name: name + ": restarted speaker's first reconcile (median)", Measured: ms(median(restarts)), Detail: durStats(restarts)})
	}
}

func uniq(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func durStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n=0"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %s max %s n=%d", ms(s[0]), ms(s[len(s)-1]), len(s))
}

// finalStatus checks that, after all the rounds, the ServiceL2Status
// objects converge on one owner per Service, matching the gauges.
func (b *l2Bench) finalStatus(ctx context.Context) {
	total := len(b.benchIPs())
	t0 := time.Now()
	err := b.waitStatuses(ctx, total, 10*time.Minute)
	counts := map[string]int{}
	extra := 0
	for _, nodes := range b.statusOwners() {
		for _, n := range nodes {
			counts[n]++
		}
		if len(nodes) > 1 {
			extra++
		}
	}
	var parts []string
	for _, n := range b.l.NodeNames() {
		parts = append(parts, fmt.Sprintf("%s %d", n, counts[n]))
	}
	res := "converged"
	if err != nil {
		res = "NOT converged"
	}
	b.figure(BenchFigure{Name: "after the rounds: ServiceL2Status one per Service",
		Measured: fmt.Sprintf("%s in %s", res, time.Since(t0).Round(time.Second)),
		Detail:   fmt.Sprintf("per node: %s; Services with more than one: %d", strings.Join(parts, ", "), extra)})
}

// print writes the table.
func (b *l2Bench) print(w io.Writer) {
	r := b.res
	fmt.Fprintf(w, "\nHerald layer-2 benchmark: %d nodes, %d filler Services + probe Services, %d round(s) per kind and family, default speaker settings\n",
		r.Nodes, r.Services, b.o.Rounds)
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s; %d CPUs\n", strings.Join(r.LoadAvg, "; "), runtime.NumCPU())
	printFigures(w, r.Figures, 28, 18)
}

// printFigures writes figures as a table (measured and target columns of
// the given widths) and counts the results.
func printFigures(w io.Writer, figs []BenchFigure, measuredW, targetW int) {
	nw := 0
	for _, f := range figs {
		nw = max(nw, len(f.Name))
	}
	fmt.Fprintf(w, "\n%-*s  %-*s  %-*s  %-6s  %s\n", nw, "figure", measuredW, "measured", targetW, "target", "result", "detail")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", nw+2+measuredW+2+targetW+2+6+2+20))
	pass, miss := 0, 0
	for _, f := range figs {
		switch f.Result {
		case "PASS":
			pass++
		case "MISS":
			miss++
		}
		fmt.Fprintf(w, "%-*s  %-*s  %-*s  %-6s  %s\n", nw, f.Name, measuredW, f.Measured, targetW, f.Target, f.Result, f.Detail)
	}
	fmt.Fprintf(w, "\n%d PASS, %d MISS\n", pass, miss)
}

// ----- membership, from the speakers' logs -----

// memberWatch follows the speakers' logs for memberlist's "member up" and
// "member down" lines, so the benchmark knows when every speaker sees
// every other again.
type memberWatch struct {
	l     *Lab
	mu    sync.Mutex
	off   map[string]int64
	views map[string]map[string]bool // speaker -> peer -> up
}

func newMemberWatch(l *Lab) *memberWatch {
	return &memberWatch{l: l, off: map[string]int64{}, views: map[string]map[string]bool{}}
}

func (w *memberWatch) update() {
	for _, n := range w.l.NodeNames() {
		f, err := os.Open(w.l.LogFile(ProcSpeaker(n)))
		if err != nil {
			continue
		}
		if st, err := f.Stat(); err == nil && st.Size() < w.off[n] {
			w.off[n] = 0 // rotated or truncated
			w.views[n] = nil
		}
		_, _ = f.Seek(w.off[n], io.SeekStart)
		r := bufio.NewReaderSize(f, 1<<16)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				break // a partial line is read again next time
			}
			w.off[n] += int64(len(line))
			if !bytes.Contains(line, []byte(`"member`)) {
				continue
			}
			var e struct {
				Msg  string `json:"msg"`
				Peer string `json:"peer"`
			}
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			switch e.Msg {
			case "memberlist started":
				w.views[n] = map[string]bool{n: true}
			case "member up", "member down":
				if w.views[n] == nil {
					w.views[n] = map[string]bool{}
				}
				w.views[n][e.Peer] = e.Msg == "member up"
			}
		}
		f.Close()
	}
}

// full reports whether every speaker's last word on every other node is
// "member up".
func (w *memberWatch) full() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.update()
	names := w.l.NodeNames()
	for _, n := range names {
		for _, p := range names {
			if p != n && !w.views[n][p] {
				return false, fmt.Sprintf("speaker %s does not see %s as a member", n, p)
			}
		}
	}
	return true, ""
}
