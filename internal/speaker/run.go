package speaker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/announce/arp"
	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/announce/ndp"
	"github.com/herald-lb/herald/internal/k8s"
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
	HealthAddr  string
	QPS         float32
	Burst       int
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

// serviceStore is the Service informer's store, or nil. The loops read
// its objects: listing through the client copies every Service into a new
// slice each pass (6 MB at 10,000 Services).
func serviceStore(mgr manager.Manager) interface{ List() []any } {
	inf, err := mgr.GetCache().GetInformer(context.Background(), &corev1.Service{})
	if err != nil {
		return nil
	}
	if s, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
		return s.GetStore()
	}
	return nil
}

// Run runs the speaker until ctx ends. On the way out it leaves the
// memberlist cluster first, so the next owners take over at once, and
// closes its BGP sessions with a NOTIFICATION at the same time, so the
// routers drop this node's next hop at once.
func Run(ctx context.Context, restCfg *rest.Config, opts Options, log logr.Logger) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	cfg := rest.CopyConfig(restCfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	scheme, err := k8s.NewScheme()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l2m := metrics.NewL2(reg)

	inNS := cache.ByObject{Namespaces: map[string]cache.Config{opts.Namespace: {}}}
	ownNode := cache.ByObject{
		Namespaces: map[string]cache.Config{opts.Namespace: {}},
		Label:      labels.SelectorFromSet(labels.Set{v1beta1.LabelNodeName: opts.NodeName}),
	}
	events := k8s.NewEventBroadcaster()
	defer events.Shutdown()
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme: scheme,
		Logger: log,
		//nolint:staticcheck // the option is deprecated, but the only way to size the correlator's caches
		EventBroadcaster: events,
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Service{}:            {Transform: serviceTransform(servicereq.Class{Name: opts.LBClass, Only: opts.LBClassOnly})},
				&discoveryv1.EndpointSlice{}: {Transform: slimEndpointSlice},
				&v1beta1.IPAddressPool{}:     inNS,
				&v1beta1.L2Advertisement{}:   inNS,
				&v1beta1.BGPAdvertisement{}:  inNS,
				&v1beta1.BGPPeer{}:           inNS,
				&v1beta1.Community{}:         inNS,
				&corev1.Secret{}:             inNS, // BGPPeer passwordSecrets
				&v1beta1.ServiceBGPStatus{}:  ownNode,
				&v1beta1.BGPSessionStatus{}:  ownNode,
				&v1beta1.ServiceL2Status{}: {
					Namespaces: map[string]cache.Config{opts.Namespace: {}},
					Label:      labels.SelectorFromSet(labels.Set{v1beta1.LabelNodeName: opts.NodeName}),
				},
				&corev1.ConfigMap{}: {
					Namespaces: map[string]cache.Config{opts.Namespace: {}},
					Field:      fields.OneTermEqualSelector("metadata.name", v1beta1.LegacyConfigMapName),
				},
			},
		},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: opts.HealthAddr,
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		// The speaker leaves memberlist before its manager stops.
		GracefulShutdownTimeout: ptr.To(5 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}

	// The responders' gate: held after a stall until the membership is
	// resynchronized, no announcements without quorum.
	kick := &kicker{}
	hold := &Hold{OnHold: func() {
		log.Info("this process stood still; holding layer-2 answers until the membership is resynchronized")
		kick.kick()
	}}
	arpR := arp.New(arp.Options{Log: log.WithName("arp"), Metrics: l2m, Gate: hold.Gate})
	ndpR := ndp.New(ndp.Options{Log: log.WithName("ndp"), Metrics: l2m, Gate: hold.Gate})
	nics := &interfaceList{}
	if err := nics.refresh(); err != nil {
		return err
	}
	status := NewStatusWriter(mgr.GetClient(), opts.Namespace, opts.NodeName, log.WithName("status"))
	loop := &L2Loop{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorderFor("herald-speaker"),
		Namespace:  opts.Namespace,
		NodeName:   opts.NodeName,
		Class:      servicereq.Class{Name: opts.LBClass, Only: opts.LBClassOnly},
		ARP:        arpR,
		NDP:        ndpR,
		Interfaces: nics,
		Status:     status,
		Metrics:    l2m,
		Log:        log.WithName("l2"),
		Hold:       hold,
	}
	loop.ServiceStore = serviceStore(mgr)

	var members *memberlist.Membership
	if opts.Memberlist {
		members, err = newMembership(ctx, mgr, opts, log.WithName("memberlist"))
		if err != nil {
			return err
		}
		loop.Membership = members
	}

	for _, r := range []manager.Runnable{
		manager.RunnableFunc(hold.Run),
		manager.RunnableFunc(arpR.Run),
		manager.RunnableFunc(ndpR.Run),
		status,
		manager.RunnableFunc(func(ctx context.Context) error { return nics.watch(ctx, kick.kick) }),
	} {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}

	// API events reach the loop batched (a burst of 10,000 Services costs
	// one pass per apiBatchDelay, not one per event); membership and
	// interface changes (kick) at once: they are failovers. The
	// ServiceL2Status objects are the status writer's business: their
	// events kick it, not the loop.
	toLoop := batchedEvents{delay: loop.BatchDelay, changed: loop.invalidatePlans}
	statusEvents := handler.TypedFuncs[*v1beta1.ServiceL2Status, reconcile.Request]{
		CreateFunc: func(context.Context, event.TypedCreateEvent[*v1beta1.ServiceL2Status], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			status.Kick()
		},
		UpdateFunc: func(context.Context, event.TypedUpdateEvent[*v1beta1.ServiceL2Status], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			status.Kick()
		},
		DeleteFunc: func(context.Context, event.TypedDeleteEvent[*v1beta1.ServiceL2Status], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			status.Kick()
		},
	}
	b := builder.ControllerManagedBy(mgr).
		Named("l2").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&corev1.Service{}, toLoop).
		Watches(&discoveryv1.EndpointSlice{}, toLoop).
		Watches(&corev1.Node{}, toLoop).
		Watches(&v1beta1.IPAddressPool{}, toLoop).
		Watches(&v1beta1.L2Advertisement{}, toLoop).
		Watches(&v1beta1.Community{}, toLoop).
		Watches(&corev1.ConfigMap{}, toLoop).
		WatchesRawSource(source.Kind(mgr.GetCache(), &v1beta1.ServiceL2Status{}, statusEvents)).
		WatchesRawSource(kick.source())
	if err := b.Complete(loop); err != nil {
		return fmt.Errorf("set up the layer-2 loop: %w", err)
	}

	bgpSpeaker, err := setupBGP(mgr, opts, reg, log)
	if err != nil {
		return err
	}

	if opts.MetricsAddr != "0" && opts.MetricsAddr != "" {
		if err := mgr.Add(&metrics.Server{Addr: opts.MetricsAddr, Registry: reg}); err != nil {
			return err
		}
	}

	mctx, stopManager := context.WithCancel(context.Background())
	defer stopManager()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- mgr.Start(mctx) })
	// BGP ends with ctx itself: SIGTERM closes the sessions at once.
	bgpCtx, stopBGP := context.WithCancel(ctx)
	defer stopBGP()
	wg.Go(func() {
		if err := bgpSpeaker.Run(bgpCtx); err != nil {
			errc <- err
		}
	})
	if members != nil {
		memberCtx, stopMembers := context.WithCancel(context.Background())
		defer stopMembers()
		wg.Go(func() {
			// A member gone: the planned takeover at once, then the pass
			// (a moment later, when the takeover's gratuitous
			// announcements have had the CPU).
			changed := func() {
				if loop.TakeOver() {
					kick.kickAfter(takeoverPassDelay)
					return
				}
				kick.kick()
			}
			if err := runMembership(memberCtx, mgr, members, opts, changed, log); err != nil {
				errc <- err
			}
		})
		// Shutdown order: leave memberlist first (the others take over
		// and announce at once), keep answering a moment, then stop.
		select {
		case <-ctx.Done():
		case err := <-errc:
			stopMembers()
			stopBGP()
			stopManager()
			wg.Wait()
			return err
		}
		stopMembers()
		waitHandover(300 * time.Millisecond)
	} else {
		select {
		case <-ctx.Done():
		case err := <-errc:
			return err
		}
	}
	stopManager()
	wg.Wait()
	return nil
}

// batchedEvents enqueues the loop's key delay() after an event; events
// meanwhile join the same pass (the delaying queue keeps the earliest
// time of a waiting key). Every event also calls changed at once (the
// takeover plans are void from then on).
type batchedEvents struct {
	delay   func() time.Duration
	changed func()
}

var _ handler.EventHandler = batchedEvents{}

func (b batchedEvents) enqueue(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if b.changed != nil {
		b.changed()
	}
	q.AddAfter(LoopKey, b.delay())
}

func (b batchedEvents) Create(_ context.Context, _ event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.enqueue(q)
}

func (b batchedEvents) Update(_ context.Context, _ event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.enqueue(q)
}

func (b batchedEvents) Delete(_ context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.enqueue(q)
}

func (b batchedEvents) Generic(_ context.Context, _ event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	b.enqueue(q)
}

// kicker enqueues the loop's single key from outside the API server's
// events (membership changes, interface changes).
type kicker struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func (k *kicker) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		k.mu.Lock()
		k.q = q
		k.mu.Unlock()
		q.Add(LoopKey)
		return nil
	})
}

func (k *kicker) kick() { k.kickAfter(0) }

// kickAfter enqueues the loop's key after d (sooner if kicked meanwhile;
// at once for d <= 0).
func (k *kicker) kickAfter(d time.Duration) {
	k.mu.Lock()
	q := k.q
	k.mu.Unlock()
	if q != nil {
		q.AddAfter(LoopKey, d)
	}
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
func newMembership(ctx context.Context, mgr manager.Manager, opts Options, log logr.Logger) (*memberlist.Membership, error) {
	host, port, _ := splitHostPort(opts.MemberlistBind)
	key, err := gossipKey(ctx, mgr.GetAPIReader(), opts, log)
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
func gossipKey(ctx context.Context, r client.Reader, opts Options, log logr.Logger) ([]byte, error) {
	if opts.MemberlistSecret == "" {
		log.Info("gossip is not encrypted: no memberlist secret configured")
		return nil, nil
	}
	delay := 250 * time.Millisecond
	for {
		var s corev1.Secret
		err := r.Get(ctx, client.ObjectKey{Namespace: opts.Namespace, Name: opts.MemberlistSecret}, &s)
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
func runMembership(ctx context.Context, mgr manager.Manager, m *memberlist.Membership, opts Options, changed func(), log logr.Logger) error {
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil
	}
	_, port, _ := splitHostPort(opts.MemberlistBind)
	seeds := slices.Clone(opts.MemberlistJoin)
	var nodes corev1.NodeList
	if err := mgr.GetCache().List(ctx, &nodes); err != nil {
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
