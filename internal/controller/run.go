// Package controller wires Herald's controller: a controller-runtime
// manager with leader election, the configuration and Service reconcilers
// of package allocation, the pool status writer, the validating webhook
// (package webhook) with its self-managed certificate (package certs),
// metrics and health endpoints. The controller's main only parses flags and
// calls Run.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller/allocation"
	"github.com/herald-lb/herald/internal/controller/certs"
	"github.com/herald-lb/herald/internal/controller/webhook"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/servicereq"
)

// Options configure the controller.
type Options struct {
	// Namespace holds Herald's configuration and its leader-election Lease.
	Namespace string
	// LBClass is the loadBalancerClass Herald answers to, besides
	// class-less Services (unless LBClassOnly).
	LBClass     string
	LBClassOnly bool
	// LeaderElection enables the Lease; off only for a single replica.
	LeaderElection   bool
	LeaderElectionID string
	// MetricsAddr and HealthAddr: "host:port", "0" disables.
	MetricsAddr string
	HealthAddr  string
	// Workers is the number of concurrent Service reconciles.
	Workers int
	// MemberlistSecret is the speakers' gossip Secret, created when
	// missing ("" disables).
	MemberlistSecret string
	// QPS and Burst limit the client's requests to the API server.
	QPS   float32
	Burst int

	// WebhookAddr is the validating webhook's "host:port"; "" or "0"
	// runs no webhook and manages no certificate.
	WebhookAddr string
	// WebhookService is the Service in Namespace the API server reaches
	// the webhook through; its DNS names go into the certificate.
	WebhookService string
	// WebhookConfigName is the ValidatingWebhookConfiguration whose
	// caBundle the leader keeps; WebhookSecret the Secret in Namespace
	// holding the certificate. The manifests' RBAC allows these names.
	WebhookConfigName string
	WebhookSecret     string
	// WebhookCertHosts are extra DNS names or IPs for the certificate.
	WebhookCertHosts []string
	// WebhookCertValidity is each certificate's lifetime; a new one
	// replaces it when a third is left.
	WebhookCertValidity time.Duration
	// WebhookCertPropagation is the wait between publishing a new CA and
	// serving a certificate it signed (0: certs.DefaultPropagation).
	WebhookCertPropagation time.Duration
}

// DefaultOptions returns the defaults the flags start from.
func DefaultOptions() Options {
	return Options{
		Namespace:        v1beta1.Namespace,
		LeaderElection:   true,
		LeaderElectionID: "herald-controller",
		MemberlistSecret: "herald-memberlist",
		MetricsAddr:      ":7472",
		HealthAddr:       ":7473",
		Workers:          8,
		// Two writes per Service assigned (status, then the pool
		// annotation) plus its event: at 200 requests/s a burst of new
		// Services waited on this client rather than on the API server
		// (p99 20 s for 5,000 created by 16 clients, 0.24 s at 500).
		QPS:   500,
		Burst: 1000,

		WebhookAddr:         "0",
		WebhookService:      "herald-webhook",
		WebhookConfigName:   certs.DefaultWebhookConfigName,
		WebhookSecret:       certs.DefaultSecretName,
		WebhookCertValidity: certs.DefaultValidity,
	}
}

// webhookEnabled reports whether the options ask for the webhook.
func (o Options) webhookEnabled() bool { return o.WebhookAddr != "" && o.WebhookAddr != "0" }

// certOptions are the certificate options the webhook options imply.
func (o Options) certOptions() certs.Options {
	svc := o.WebhookService
	hosts := []string{
		svc + "." + o.Namespace + ".svc",
		svc + "." + o.Namespace + ".svc.cluster.local",
		svc + "." + o.Namespace,
		svc,
	}
	return certs.Options{
		Namespace:         o.Namespace,
		SecretName:        o.WebhookSecret,
		WebhookConfigName: o.WebhookConfigName,
		Hosts:             append(hosts, o.WebhookCertHosts...),
		Validity:          o.WebhookCertValidity,
		Propagation:       o.WebhookCertPropagation,
	}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Namespace == "":
		return errors.New("namespace must be set")
	case o.LeaderElection && o.LeaderElectionID == "":
		return errors.New("leader election needs an ID")
	case o.Workers < 1:
		return fmt.Errorf("workers must be at least 1, not %d", o.Workers)
	case o.QPS <= 0 || o.Burst < 1:
		return fmt.Errorf("qps (%v) and burst (%d) must be positive", o.QPS, o.Burst)
	}
	for _, a := range []string{o.MetricsAddr, o.HealthAddr, o.WebhookAddr} {
		if a == "0" || a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("bad listen address %q: %w", a, err)
		}
	}
	if o.webhookEnabled() {
		if _, _, err := splitPort(o.WebhookAddr); err != nil {
			return fmt.Errorf("webhook address: %w", err)
		}
		if o.WebhookService == "" {
			return errors.New("the webhook needs its Service's name")
		}
		if err := o.certOptions().Validate(); err != nil {
			return err
		}
	}
	return nil
}

func splitPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, p, nil
}

// Run runs the controller until ctx ends.
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
	m := metrics.NewController(reg)

	inNS := cache.ByObject{Namespaces: map[string]cache.Config{opts.Namespace: {}}}
	byObject := map[client.Object]cache.ByObject{
		&v1beta1.IPAddressPool{}:    inNS,
		&v1beta1.L2Advertisement{}:  inNS,
		&v1beta1.BGPAdvertisement{}: inNS,
		&v1beta1.BGPPeer{}:          inNS,
		&v1beta1.Community{}:        inNS,
		&v1beta1.BFDProfile{}:       inNS,
		&corev1.ConfigMap{}: {
			Namespaces: map[string]cache.Config{opts.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", v1beta1.LegacyConfigMapName),
		},
	}
	certOpts := opts.certOptions()
	var certStore *certs.Store
	var webhookServer ctrlwebhook.Server
	if opts.webhookEnabled() {
		// Only the webhook's own Secret and configuration are watched:
		// the RBAC allows no other.
		byObject[&corev1.Secret{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{opts.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", certOpts.SecretName),
		}
		byObject[&admissionregistrationv1.ValidatingWebhookConfiguration{}] = cache.ByObject{
			Field: fields.OneTermEqualSelector("metadata.name", certOpts.WebhookConfigName),
		}
		host, port, _ := splitPort(opts.WebhookAddr)
		certStore = &certs.Store{Namespace: opts.Namespace, Name: certOpts.SecretName, Log: log.WithName("webhook-certificate")}
		webhookServer = ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: host,
			Port: port,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) {
				c.GetCertificate = certStore.GetCertificate
				c.MinVersion = tls.VersionTLS12
				// HTTP/1.1 only: the API server needs nothing more, and
				// HTTP/2 has had denial-of-service bugs (rapid reset).
				c.NextProtos = []string{"http/1.1"}
			}},
		})
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
			ByObject:         byObject,
		},
		WebhookServer: webhookServer,
		Metrics:       metricsserver.Options{BindAddress: "0"},
		// Our metrics are in our own registry; controller-runtime's global
		// one only names controllers, and tests run several managers.
		Controller:                    ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		HealthProbeBindAddress:        opts.HealthAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              opts.LeaderElectionID,
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}

	state := allocation.NewState()
	recorder := mgr.GetEventRecorderFor("herald-controller")
	pools := allocation.NewPoolStatusWriter(mgr.GetClient(), opts.Namespace, m, log.WithName("pool-status"), state)
	svcs := &allocation.ServiceReconciler{
		Client:       mgr.GetClient(),
		Recorder:     recorder,
		Class:        servicereq.Class{Name: opts.LBClass, Only: opts.LBClassOnly},
		Metrics:      m,
		Log:          log.WithName("services"),
		State:        state,
		PoolsChanged: pools.Notify,
	}
	cfgRec := &allocation.ConfigReconciler{
		Client:    mgr.GetClient(),
		Recorder:  recorder,
		Namespace: opts.Namespace,
		Metrics:   m,
		Log:       log.WithName("config"),
		State:     state,
		Services:  svcs,
	}
	if err := mgr.Add(pools); err != nil {
		return err
	}
	if opts.MemberlistSecret != "" {
		if err := mgr.Add(&memberlistSecret{client: mgr.GetClient(), reader: mgr.GetAPIReader(), namespace: opts.Namespace, name: opts.MemberlistSecret, log: log}); err != nil {
			return err
		}
	}
	if opts.webhookEnabled() {
		if err := setupWebhook(mgr, scheme, opts, certOpts, certStore, log); err != nil {
			return err
		}
	}
	if err := svcs.SetupWithManager(mgr, opts.Workers); err != nil {
		return fmt.Errorf("set up Service controller: %w", err)
	}

	toConfig := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{allocation.ConfigKey}
	})
	// Status writes (conditions, counts) do not change the configuration.
	specOnly := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})
	err = builder.ControllerManagedBy(mgr).
		Named("configuration").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&v1beta1.IPAddressPool{}, toConfig, builder.WithPredicates(specOnly)).
		Watches(&v1beta1.L2Advertisement{}, toConfig, builder.WithPredicates(specOnly)).
		Watches(&v1beta1.BGPAdvertisement{}, toConfig, builder.WithPredicates(specOnly)).
		Watches(&v1beta1.BGPPeer{}, toConfig, builder.WithPredicates(specOnly)).
		Watches(&v1beta1.Community{}, toConfig, builder.WithPredicates(specOnly)).
		Watches(&v1beta1.BFDProfile{}, toConfig, builder.WithPredicates(specOnly)).
		Watches(&corev1.ConfigMap{}, toConfig).
		WatchesRawSource(allocation.Once(allocation.ConfigKey)).
		Complete(cfgRec)
	if err != nil {
		return fmt.Errorf("set up configuration controller: %w", err)
	}

	if opts.MetricsAddr != "0" && opts.MetricsAddr != "" {
		if err := mgr.Add(&metrics.Server{Addr: opts.MetricsAddr, Registry: reg}); err != nil {
			return err
		}
	}
	log.Info("starting controller", "namespace", opts.Namespace, "lbClass", opts.LBClass)
	return mgr.Start(ctx)
}

// setupWebhook registers the validating webhook, the certificate Store on
// every replica, the Rotator on the leader, and a readiness check that
// passes once this replica serves TLS with a certificate.
func setupWebhook(mgr manager.Manager, scheme *runtime.Scheme, opts Options, certOpts certs.Options, store *certs.Store, log logr.Logger) error {
	store.Reader = mgr.GetClient()
	if err := store.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the webhook certificate loader: %w", err)
	}
	rot := &certs.Rotator{Client: mgr.GetClient(), Options: certOpts, Log: log.WithName("webhook-certificate")}
	if err := rot.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the webhook certificate rotator: %w", err)
	}
	srv := mgr.GetWebhookServer()
	srv.Register(webhook.Path, webhook.New(&webhook.Validator{
		Reader:    mgr.GetAPIReader(),
		Namespace: opts.Namespace,
		Decoder:   admission.NewDecoder(scheme),
		Log:       log.WithName("webhook"),
	}))
	return mgr.AddReadyzCheck("webhook", srv.StartedChecker())
}
