// Command speaker is Herald's node agent: it runs on every node and
// announces Service IPs: over layer 2 those this node owns, answering ARP
// (IPv4) and NDP (IPv6) for them, with owners agreed among speakers over
// memberlist; over BGP every IP this node may serve, to its BGP peers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/internal/logging"
	"github.com/herald-lb/herald/internal/speaker"
)

func main() {
	opts := speaker.DefaultOptions()
	fs := flag.NewFlagSet("speaker", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster)")
	fs.StringVar(&opts.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	fs.StringVar(&opts.Namespace, "namespace", opts.Namespace, "namespace of Herald's configuration")
	fs.StringVar(&opts.LBClass, "lb-class", opts.LBClass, "loadBalancerClass Herald answers to, besides Services with no class")
	fs.BoolVar(&opts.LBClassOnly, "lb-class-only", opts.LBClassOnly, "serve only Services whose class is --lb-class")
	fs.BoolVar(&opts.IgnoreExcludeLB, "ignore-exclude-lb", opts.IgnoreExcludeLB,
		"announce from nodes labelled node.kubernetes.io/exclude-from-external-load-balancers too (kubeadm labels control-plane nodes so)")
	fs.BoolVar(&opts.Memberlist, "memberlist", opts.Memberlist, "agree on owners over memberlist (off: Node readiness decides liveness)")
	fs.StringVar(&opts.MemberlistBind, "memberlist-bind", opts.MemberlistBind, "memberlist listen address ip:port")
	join := fs.String("memberlist-join", "", "extra memberlist seeds, comma-separated ip:port (Node addresses are joined anyway)")
	fs.StringVar(&opts.MemberlistSecret, "memberlist-secret", opts.MemberlistSecret, "Secret (key \"secretkey\") with the gossip encryption secret; empty disables encryption")
	fs.DurationVar(&opts.ProbeInterval, "memberlist-probe-interval", opts.ProbeInterval, "failure detection probe interval (0: 200ms)")
	fs.DurationVar(&opts.ProbeTimeout, "memberlist-probe-timeout", opts.ProbeTimeout, "failure detection probe timeout (0: 100ms)")
	fs.IntVar(&opts.SuspicionMult, "memberlist-suspicion-mult", opts.SuspicionMult, "suspicion multiplier (0: 2); higher is slower but more tolerant of loss")
	fs.IntVar(&opts.BGPListenPort, "bgp-listen-port", opts.BGPListenPort, "port BGP sessions are also accepted on (0: only open them)")
	fs.StringVar(&opts.MetricsAddr, "metrics-addr", opts.MetricsAddr, "address for /metrics (0 disables)")
	fs.StringVar(&opts.HealthAddr, "health-addr", opts.HealthAddr, "address for /healthz and /readyz (0 disables)")
	fs.DurationVar(&opts.ReadyBGPWait, "ready-bgp-wait", opts.ReadyBGPWait, "how long after the start /readyz waits for the BGP sessions")
	qps := fs.Float64("kube-api-qps", float64(opts.QPS), "requests per second to the API server")
	fs.IntVar(&opts.Burst, "kube-api-burst", opts.Burst, "burst of requests to the API server")
	gcPercent := fs.Int("gc-percent", 25, "Go GC target percentage when $GOGC is unset (lower: less memory, more CPU)")
	maxProcs := fs.Int("max-procs", 0, "threads running Go code at once when $GOMAXPROCS is unset (0: Go's choice, one per CPU the container may use); 1 costs a quarter less CPU at rest but delays large takeovers")
	logLevel := fs.String("log-level", "info", "info, debug, error, or a verbosity number")
	_ = fs.Parse(os.Args[1:])
	opts.QPS = float32(*qps)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" && *maxProcs > 0 {
		runtime.GOMAXPROCS(*maxProcs)
	}
	if *join != "" {
		opts.MemberlistJoin = strings.Split(*join, ",")
	}

	log, err := logging.New(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "speaker:", err)
		os.Exit(2)
	}
	log = log.WithName("herald-speaker")
	klog.SetLogger(log) // client-go's own messages, in the same format
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "speaker:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	restCfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		log.Error(err, "load kubeconfig")
		os.Exit(1)
	}
	if err := speaker.Run(ctx, restCfg, opts, log); err != nil {
		log.Error(err, "speaker stopped")
		os.Exit(1)
	}
}
