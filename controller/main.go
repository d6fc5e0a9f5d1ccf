// Command controller is Herald's controller: it assigns EXTERNAL-IPs to
// LoadBalancer Services from the configured address pools.
//
//	controller [flags]                      run the controller
//	controller convert-configmap FILE       print the CRDs equivalent to a
//	                                        MetalLB v0.12 ConfigMap's config
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config/legacy"
	"github.com/herald-lb/herald/internal/controller"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "convert-configmap" {
		os.Exit(convert(os.Args[2:]))
	}
	opts := controller.DefaultOptions()
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster)")
	fs.StringVar(&opts.Namespace, "namespace", opts.Namespace, "namespace of Herald's configuration and Lease")
	fs.StringVar(&opts.LBClass, "lb-class", opts.LBClass, "loadBalancerClass Herald answers to, besides Services with no class")
	fs.BoolVar(&opts.LBClassOnly, "lb-class-only", opts.LBClassOnly, "serve only Services whose class is --lb-class, not class-less ones")
	fs.BoolVar(&opts.LeaderElection, "leader-elect", opts.LeaderElection, "use a Lease so only one replica acts")
	fs.StringVar(&opts.LeaderElectionID, "leader-elect-id", opts.LeaderElectionID, "name of the Lease")
	fs.StringVar(&opts.MetricsAddr, "metrics-addr", opts.MetricsAddr, "address for /metrics (0 disables)")
	fs.StringVar(&opts.HealthAddr, "health-addr", opts.HealthAddr, "address for /healthz and /readyz (0 disables)")
	fs.StringVar(&opts.MemberlistSecret, "memberlist-secret", opts.MemberlistSecret, "speakers' gossip Secret to create when missing (empty: none)")
	fs.IntVar(&opts.Workers, "workers", opts.Workers, "concurrent Service reconciles")
	qps := fs.Float64("kube-api-qps", float64(opts.QPS), "requests per second to the API server")
	fs.IntVar(&opts.Burst, "kube-api-burst", opts.Burst, "burst of requests to the API server")
	fs.StringVar(&opts.WebhookAddr, "webhook-addr", opts.WebhookAddr, "address of the validating webhook's HTTPS server (0 disables the webhook and its certificate)")
	fs.StringVar(&opts.WebhookService, "webhook-service", opts.WebhookService, "Service (in --namespace) the API server reaches the webhook through; named in the certificate")
	fs.StringVar(&opts.WebhookConfigName, "webhook-configuration", opts.WebhookConfigName, "ValidatingWebhookConfiguration whose caBundle the controller keeps")
	fs.StringVar(&opts.WebhookSecret, "webhook-secret", opts.WebhookSecret, "Secret (in --namespace) holding the webhook's certificate; created when missing")
	certHosts := fs.String("webhook-cert-hosts", "", "extra DNS names or IPs for the webhook certificate, comma-separated")
	fs.DurationVar(&opts.WebhookCertValidity, "webhook-cert-validity", opts.WebhookCertValidity, "lifetime of each webhook certificate; a new one replaces it when a third is left")
	gcPercent := fs.Int("gc-percent", 50, "Go GC target percentage when $GOGC is unset (lower: less memory, more CPU)")
	// Millisecond timestamps: failovers are read from these logs.
	zapOpts := zap.Options{TimeEncoder: zapcore.ISO8601TimeEncoder}
	zapOpts.BindFlags(fs)
	_ = fs.Parse(os.Args[1:])
	opts.QPS = float32(*qps)
	if *certHosts != "" {
		opts.WebhookCertHosts = strings.Split(*certHosts, ",")
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}

	log := zap.New(zap.UseFlagOptions(&zapOpts)).WithName("herald-controller")
	ctrllog.SetLogger(log)
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "controller:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, opts, log); err != nil {
		log.Error(err, "controller stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig string, opts controller.Options, log logr.Logger) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	restCfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	return controller.Run(ctx, restCfg, opts, log)
}

func convert(args []string) int {
	fs := flag.NewFlagSet("convert-configmap", flag.ExitOnError)
	ns := fs.String("namespace", v1beta1.Namespace, "namespace of the generated objects")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: controller convert-configmap [--namespace NS] FILE\n\nFILE holds the YAML under the ConfigMap's \"config\" key (MetalLB v0.12 format), or the whole ConfigMap.")
		fs.PrintDefaults()
	}
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "convert-configmap:", err)
		return 1
	}
	out, err := legacy.MigrationYAML(legacy.ConfigFromFile(data), *ns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "convert-configmap:", err)
		return 1
	}
	os.Stdout.Write(out)
	return 0
}
