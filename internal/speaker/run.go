package speaker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/announce/arp"
	"github.com/herald-lb/herald/internal/announce/bfd"
	"github.com/herald-lb/herald/internal/announce/bgp"
	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/ndp"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/membership/memberlist"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/servicereq"
)

// Options configure the speaker.
type Options struct {
	NodeName  string
	Namespace string
	LBClass   string
	// LBClassOnly: see the controller's option of the same name.
	LBClassOnly bool
	// IgnoreExcludeLB: nodes labelled node.kubernetes.io/exclude-from-
	// external-load-balancers announce too (kubeadm labels control-plane
	// nodes so; on a cluster of such nodes nothing would be announced).
	IgnoreExcludeLB bool

	// Memberlist off falls back to Node readiness for liveness.
	Memberlist       bool
	MemberlistBind   string // "ip:port"
	MemberlistJoin   []string
	MemberlistSecret string // Secret name in Namespace, key "secretkey"
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int

	// BGPListenPort is the port BGP sessions are also accepted on (0:
	// the speaker only opens them).
	BGPListenPort int

	MetricsAddr string
	// HealthAddr serves /healthz and /readyz (Readiness); ReadyBGPWait
	// bounds how long /readyz waits for the BGP sessions.
	HealthAddr   string
	ReadyBGPWait time.Duration
	QPS          float32
	Burst        int
}

// DefaultOptions returns the defaults the flags start from.
func DefaultOptions() Options {
	return Options{
		Namespace:        v1beta1.Namespace,
		Memberlist:       true,
		MemberlistBind:   "0.0.0.0:7946",
		MemberlistSecret: "herald-memberlist",
		BGPListenPort:    179,
		MetricsAddr:      ":7472",
		HealthAddr:       ":7473",
		ReadyBGPWait:     DefaultReadyBGPWait,
		QPS:              50,
		Burst:            100,
	}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.NodeName == "":
		return errors.New("node name must be set (--node-name or NODE_NAME)")
	case o.Namespace == "":
		return errors.New("namespace must be set")
	case o.QPS <= 0 || o.Burst < 1:
		return fmt.Errorf("qps (%v) and burst (%d) must be positive", o.QPS, o.Burst)
	case o.ReadyBGPWait < 0:
		return fmt.Errorf("ready BGP wait %s is negative", o.ReadyBGPWait)
	case o.BGPListenPort < 0 || o.BGPListenPort > 65535:
		return fmt.Errorf("BGP listen port %d is not 0..65535", o.BGPListenPort)
	}
	if o.Memberlist {
		if _, _, err := splitHostPort(o.MemberlistBind); err != nil {
			return fmt.Errorf("memberlist bind address: %w", err)
		}
		for _, j := range o.MemberlistJoin {
			if _, _, err := splitHostPort(j); err != nil {
				return fmt.Errorf("memberlist join address: %w", err)
			}
		}
	}
	for _, a := range []string{o.MetricsAddr, o.HealthAddr} {
		if a == "0" || a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("bad listen address %q: %w", a, err)
		}
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", s)
	}
	return host, p, nil
}

// Run runs the speaker until ctx ends. On the way out it leaves the
// memberlist cluster first, so the next owners take over at once, and
// closes its BGP sessions with a NOTIFICATION at the same time, so the
// routers drop this node's next hop at once.
func Run(ctx context.Context, restCfg *rest.Config, opts Options, log logr.Logger) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	start := time.Now()
	cfg := rest.CopyConfig(restCfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	scheme, err := kube.NewScheme()
	if err != nil {
		return err
	}
	api, err := kube.NewClient(cfg, scheme)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l2m := metrics.NewL2(reg)
	recorder := kube.NewEvents(api, "herald-speaker", opts.NodeName)

	// The health server answers from the start: the speaker may wait for
	// the memberlist Secret (written by the controller's leader) for a
	// while, and a liveness probe that found no server would kill it.
	// Until the loops are built it is alive and not ready.
	var readiness atomic.Pointer[Readiness]
	healthErr := make(chan error, 1)
	hctx, stopHealth := context.WithCancel(context.Background())
	defer stopHealth()
	if opts.HealthAddr != "0" && opts.HealthAddr != "" {
		go func() {
			healthErr <- metrics.ServeHealth(hctx, opts.HealthAddr, func() (bool, string) {
				if r := readiness.Load(); r != nil {
					return r.Check()
				}
				return false, "starting: waiting for the caches and the memberlist secret"
			})
		}()
	}

	class := servicereq.Class{Name: opts.LBClass, Only: opts.LBClassOnly}
	informers, err := newInformers(api, opts, class)
	if err != nil {
		return err
	}
	c := informers.cache

	// The responders' gate: held after a stall until the membership is
	// resynchronized, no announcements without quorum.
	var l2Runner *runner
	hold := &Hold{OnHold: func() {
		log.Info("this process stood still; holding layer-2 answers until the membership is resynchronized")
		l2Runner.kick()
	}}
	var loop *L2Loop // the responders report conflicts to it
	arpR := arp.New(arp.Options{Log: log.WithName("arp"), Metrics: l2m, Gate: hold.Gate,
		OnConflict: func(c arp.Conflict) { loop.ReportConflict("arp", c) }})
	ndpR := ndp.New(ndp.Options{Log: log.WithName("ndp"), Metrics: l2m, Gate: hold.Gate,
		OnConflict: func(c ndp.Conflict) { loop.ReportConflict("ndp", c) }})
	nics := &interfaceList{}
	if err := nics.refresh(); err != nil {
		return err
	}
	status := NewStatusWriter(cachedClient{Reader: c, Writer: api}, opts.Namespace, opts.NodeName, log.WithName("status"))
	status.Owner = informers.nodeOwner(opts.NodeName)
	loop = &L2Loop{
		IgnoreExcludeLB: opts.IgnoreExcludeLB,
		Client:          c,
		Recorder:        recorder,
		Namespace:       opts.Namespace,
		NodeName:        opts.NodeName,
		Class:           class,
		ARP:             arpR,
		NDP:             ndpR,
		Interfaces:      nics,
		Status:          status,
		Metrics:         l2m,
		Log:             log.WithName("l2"),
		Hold:            hold,
		ServiceStore:    informers.services.Store(),
	}
	l2Runner = newRunner(loop, log.WithName("l2"))
	kernelARP := NewKernelARPCheck(KernelARPOptions{
		NodeName:   opts.NodeName,
		Interfaces: nics.arpInterfaces,
		Node: func() runtime.Object {
			if o, ok, _ := informers.nodes.Store().GetByKey(opts.NodeName); ok {
				if n, ok := o.(*corev1.Node); ok {
					return n
				}
			}
			return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: opts.NodeName}}
		},
		Recorder: recorder,
		Gauge:    l2m.KernelARPConflicts,
		Log:      log.WithName("kernel-arp"),
	})
	loop.KernelARP = kernelARP

	var members *memberlist.Membership
	if opts.Memberlist {
		members, err = newMembership(ctx, api, opts, log.WithName("memberlist"))
		if err != nil {
			return err
		}
		loop.Membership = members
	}

	// API events reach the loop batched (a burst of 10,000 Services costs
	// one pass per BatchDelay, not one per event); membership and
	// interface changes (kick) at once: they are failovers. Every API
	// event voids the takeover plans at once. The ServiceL2Status objects
	// are the status writer's business: their events kick it, not the
	// loop.
	toLoop := onEvent(func() {
		loop.invalidatePlans()
		l2Runner.kickAfter(loop.BatchDelay())
	})
	if err := informers.addLoopHandler(toLoop, informers.nodes, informers.pools,
		informers.l2Advs, informers.communities, informers.bfdProfiles, informers.configMap); err != nil {
		return err
	}
	if err := informers.l2Status.AddHandler(onEvent(status.Kick)); err != nil {
		return err
	}

	// A BGP session left open at the shutdown (graceful restart) keeps
	// its BFD session up until the process exits.
	var bgpSpeaker *bgp.Speaker
	bfdMgr := bfd.New(bfd.Options{Log: log.WithName("bfd"), Keep: func(a netip.Addr) bool { return bgpSpeaker.LeavesOpen(a) }})
	bgpSpeaker, bgpLoop, bgpRunner, bgpStatus, err := setupBGP(api, c, recorder, informers, opts, bfdMgr, reg, log)
	if err != nil {
		return err
	}
	bfdLink := &BFDLink{BFD: bfdMgr, BGP: bgpSpeaker, Log: log.WithName("bfd"), Notify: bgpStatus.KickSessions}

	// Everything but BGP stops with mctx, after the handover; BGP stops
	// with ctx itself: SIGTERM closes the sessions at once.
	mctx, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	g := &group{errc: make(chan error, 1)}
	synced := c.WaitForSync
	g.run("cache", func() error { return c.Run(mctx) })
	g.run("events", func() error { return recorder.Run(mctx) })
	g.run("hold", func() error { return hold.Run(mctx) })
	g.run("arp", func() error { return arpR.Run(mctx) })
	g.run("ndp", func() error { return ndpR.Run(mctx) })
	g.run("interfaces", func() error { return nics.watch(mctx, l2Runner.kick) })
	g.run("kernel arp", func() error { return kernelARP.Run(mctx) })
	// The status writers list their objects from the cache.
	afterSync := func(run func(context.Context) error) func() error {
		return func() error {
			if !synced(mctx) {
				return nil
			}
			return run(mctx)
		}
	}
	g.run("l2 status", afterSync(status.Start))
	g.run("bgp status", afterSync(bgpStatus.Start))
	g.run("l2 loop", func() error { return l2Runner.Run(mctx, synced) })
	g.run("bgp loop", func() error { return bgpRunner.Run(mctx, synced) })
	g.run("bgp prestart", func() error {
		// The sessions open while the Services are still being listed.
		if kube.WaitForSyncOf(mctx, informers.bgpConfig()...) {
			if err := bgpLoop.Prestart(mctx); err != nil {
				log.Info("opening the BGP sessions early failed; the first pass opens them", "err", err.Error())
			}
		}
		return nil
	})
	if opts.MetricsAddr != "0" && opts.MetricsAddr != "" {
		g.run("metrics", func() error { return (&metrics.Server{Addr: opts.MetricsAddr, Registry: reg}).Start(mctx) })
	}
	if opts.HealthAddr != "0" && opts.HealthAddr != "" {
		readiness.Store(&Readiness{Start: start, BGPWait: opts.ReadyBGPWait, L2Passed: loop.Passed, BGPSessions: bgpStatus.Waiting})
		g.run("health", func() error {
			select {
			case err := <-healthErr:
				return err
			case <-mctx.Done():
				stopHealth()
				return <-healthErr
			}
		})
	}
	bgpCtx, stopBGP := context.WithCancel(ctx)
	defer stopBGP()
	g.run("bgp", func() error { return bgpSpeaker.Run(bgpCtx) })
	// BFD stops with BGP: the routers learn at once (AdminDown), but for
	// the sessions BGP leaves open (graceful restart, Keep above). Its
	// ports open with the first BFD session; without them BFD sessions
	// stay down, which the status shows, and the rest runs on.
	g.run("bfd", func() error { return bfdMgr.Run(bgpCtx) })
	g.run("bfd link", func() error { return bfdLink.Run(bgpCtx) })

	stopAll := func() {
		stopBGP()
		stopLoops()
		g.wg.Wait()
	}
	if members == nil {
		select {
		case <-ctx.Done():
			stopAll()
			return nil
		case err := <-g.errc:
			stopAll()
			return err
		}
	}
	memberCtx, stopMembers := context.WithCancel(context.Background())
	defer stopMembers()
	g.run("memberlist", func() error {
		// A member gone: the planned takeover at once, then the pass (a
		// moment later, when the takeover's gratuitous announcements
		// have had the CPU).
		changed := func() {
			if loop.TakeOver() {
				l2Runner.kickAfter(takeoverPassDelay)
				return
			}
			l2Runner.kick()
		}
		return runMembership(memberCtx, c, members, opts, changed, log)
	})
	// Shutdown order: leave memberlist first (the others take over and
	// announce at once), keep answering a moment, then stop. From the
	// start of it this node announces nothing more: a gratuitous
	// announcement still due (an address taken a moment ago) would pull
	// clients back from the node that took over.
	select {
	case <-ctx.Done():
	case err := <-g.errc:
		stopMembers()
		stopAll()
		return err
	}
	hold.Leave()
	stopMembers()
	waitHandover(300 * time.Millisecond)
	stopAll()
	return nil
}

// informerSet is every informer the speaker reads.
type informerSet struct {
	cache                                        *kube.Cache
	services, slices, nodes, configMap, secrets  *kube.Informer
	pools, l2Advs, bgpAdvs, peers, communities   *kube.Informer
	bfdProfiles                                  *kube.Informer
	l2Status, bgpServiceStatus, bgpSessionStatus *kube.Informer
}

// newInformers declares the informers: Services and EndpointSlices
// everywhere, reduced to what the loops read; Nodes; the configuration,
// the legacy ConfigMap and BGPPeer passwordSecrets in Herald's
// namespace; this node's status objects.
func newInformers(api *kube.APIClient, opts Options, class servicereq.Class) (*informerSet, error) {
	c := kube.NewCache(api)
	s := &informerSet{cache: c}
	inNS := kube.InformerOptions{Namespace: opts.Namespace}
	ownNode := kube.InformerOptions{Namespace: opts.Namespace, Labels: labels.Set(nodeLabels(opts.NodeName))}
	for _, d := range []struct {
		inf  **kube.Informer
		obj  kube.Object
		opts kube.InformerOptions
	}{
		{&s.services, &corev1.Service{}, kube.InformerOptions{Transform: serviceTransform(class)}},
		{&s.slices, &discoveryv1.EndpointSlice{}, kube.InformerOptions{Transform: slimEndpointSlice}},
		{&s.nodes, &corev1.Node{}, kube.InformerOptions{}},
		{&s.configMap, &corev1.ConfigMap{}, kube.InformerOptions{
			Namespace: opts.Namespace, Fields: fields.OneTermEqualSelector("metadata.name", v1beta1.LegacyConfigMapName),
		}},
		{&s.secrets, &corev1.Secret{}, inNS},
		{&s.pools, &v1beta1.IPAddressPool{}, inNS},
		{&s.l2Advs, &v1beta1.L2Advertisement{}, inNS},
		{&s.bgpAdvs, &v1beta1.BGPAdvertisement{}, inNS},
		{&s.peers, &v1beta1.BGPPeer{}, inNS},
		{&s.communities, &v1beta1.Community{}, inNS},
		{&s.bfdProfiles, &v1beta1.BFDProfile{}, inNS},
		{&s.l2Status, &v1beta1.ServiceL2Status{}, ownNode},
		{&s.bgpServiceStatus, &v1beta1.ServiceBGPStatus{}, ownNode},
		{&s.bgpSessionStatus, &v1beta1.BGPSessionStatus{}, ownNode},
	} {
		inf, err := c.Informer(d.obj, d.opts)
		if err != nil {
			return nil, err
		}
		*d.inf = inf
	}
	return s, nil
}

// addLoopHandler adds h to the Service and EndpointSlice informers and to
// others, through passFilter: most Service and EndpointSlice events, and
// the configuration's status writes, cannot change a pass.
func (s *informerSet) addLoopHandler(h toolscache.ResourceEventHandler, others ...*kube.Informer) error {
	filtered := passFilter{services: s.services.Store()}.handler(h)
	for _, inf := range append([]*kube.Informer{s.services, s.slices}, others...) {
		if err := inf.AddHandler(filtered); err != nil {
			return err
		}
	}
	return nil
}

// group runs functions in goroutines and keeps the first error.
type group struct {
	wg   sync.WaitGroup
	errc chan error
}

func (g *group) run(name string, f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			select {
			case g.errc <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	})
}

// takeoverPassDelay is how long the pass waits after a planned takeover.
const takeoverPassDelay = 100 * time.Millisecond

// interfaceList caches the node's interfaces, refreshed on kernel
// notifications.
type interfaceList struct {
	mu   sync.Mutex
	list []ifaces.Interface
}

func (l *interfaceList) refresh() error {
	list, err := ifaces.List()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	l.mu.Lock()
	l.list = list
	l.mu.Unlock()
	return nil
}

// Resolve implements Interfaces.
func (l *interfaceList) Resolve(wanted []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wanted == nil {
		return ifaces.Default(l.list)
	}
	return ifaces.Resolve(l.list, wanted)
}

// arpInterfaces are the interfaces the kernel may answer ARP requests on:
// those it would answer on by default (ifaces.Default) with an IPv4
// address.
func (l *interfaceList) arpInterfaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v4 []ifaces.Interface
	for _, i := range l.list {
		if i.HasIPv4 {
			v4 = append(v4, i)
		}
	}
	return ifaces.Default(v4)
}

// LinkUp implements Interfaces.
func (l *interfaceList) LinkUp(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, i := range l.list {
		if i.Name == name {
			return i.LinkUp()
		}
	}
	return false
}

func (l *interfaceList) watch(ctx context.Context, changed func()) error {
	ch, err := ifaces.Watch(ctx)
	if err != nil {
		return err
	}
	for range ch {
		if err := l.refresh(); err != nil {
			return err
		}
		changed()
	}
	return nil
}

// newMembership reads the gossip key and builds the membership.
func newMembership(ctx context.Context, api kube.Reader, opts Options, log logr.Logger) (*memberlist.Membership, error) {
	host, port, _ := splitHostPort(opts.MemberlistBind)
	key, err := gossipKey(ctx, api, opts, log)
	if err != nil {
		return nil, err
	}
	return memberlist.New(memberlist.Options{
		NodeName:      opts.NodeName,
		BindAddr:      host,
		BindPort:      port,
		SecretKey:     key,
		ProbeInterval: opts.ProbeInterval,
		ProbeTimeout:  opts.ProbeTimeout,
		SuspicionMult: opts.SuspicionMult,
		Join:          opts.MemberlistJoin,
		Log:           log,
	})
}

// gossipKey reads the memberlist Secret, waiting for the controller to
// create it. The key is the SHA-256 of the secret, so any length works.
func gossipKey(ctx context.Context, r kube.Reader, opts Options, log logr.Logger) ([]byte, error) {
	if opts.MemberlistSecret == "" {
		log.Info("gossip is not encrypted: no memberlist secret configured")
		return nil, nil
	}
	delay := 250 * time.Millisecond
	for {
		var s corev1.Secret
		err := r.Get(ctx, types.NamespacedName{Namespace: opts.Namespace, Name: opts.MemberlistSecret}, &s)
		if err == nil {
			data := s.Data[MemberlistSecretKey]
			if len(data) == 0 {
				return nil, fmt.Errorf("secret %s/%s has no %q key", opts.Namespace, opts.MemberlistSecret, MemberlistSecretKey)
			}
			sum := sha256.Sum256(data)
			return sum[:], nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read secret %s/%s: %w", opts.Namespace, opts.MemberlistSecret, err)
		}
		log.Info("waiting for the memberlist secret", "secret", opts.MemberlistSecret)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// MemberlistSecretKey is the key of the memberlist Secret holding the
// gossip secret.
const MemberlistSecretKey = "secretkey"

// runMembership waits for the caches, joins the Nodes' addresses (and the
// configured seeds), and runs the membership, kicking the loop on every
// change.
func runMembership(ctx context.Context, c *kube.Cache, m *memberlist.Membership, opts Options, changed func(), log logr.Logger) error {
	if !c.WaitForSync(ctx) {
		return nil
	}
	_, port, _ := splitHostPort(opts.MemberlistBind)
	seeds := slices.Clone(opts.MemberlistJoin)
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return fmt.Errorf("list Nodes for memberlist seeds: %w", err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == opts.NodeName {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				seeds = append(seeds, net.JoinHostPort(a.Address, strconv.Itoa(port)))
				break
			}
		}
	}
	if err := m.SetSeeds(seeds); err != nil {
		return err
	}
	log.Info("joining speakers", "seeds", seeds)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-m.Changes():
			changed()
		}
	}
}

// waitHandover keeps the responders answering for a moment after we left
// the cluster, while the others (told at once by the leave) take over and
// announce; so no request finds nobody answering.
func waitHandover(d time.Duration) {
	time.Sleep(d)
}

// nodeOwner returns a function giving the owner reference to node's Node
// from the cache, nil while the cache does not have it.
func (s *informerSet) nodeOwner(node string) func() *metav1.OwnerReference {
	return func() *metav1.OwnerReference {
		obj, ok, err := s.nodes.Store().GetByKey(node)
		n, isNode := obj.(*corev1.Node)
		if err != nil || !ok || !isNode || n.UID == "" {
			return nil
		}
		return NodeOwner(n)
	}
}
