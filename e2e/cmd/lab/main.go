// Command lab runs Herald's network lab on one machine (root): network
// namespaces for an API server, N nodes, a router with FRR and two clients,
// with Herald's controller and speakers as processes.
//
//	lab up [--nodes 3] [--dir lab]      build the lab (tears down leftovers first)
//	lab demo                            show a LoadBalancer Service answering
//	lab status                          what runs and what answers
//	lab down                            remove everything the lab made
//	lab kill NODE [SIGNAL]              signal a node's speaker (default KILL)
//	lab link NODE up|down               take a node's segment link up or down
//	lab restart PROCESS                 restart a lab process (speaker-n1, controller, ...)
//	lab proxy --node NAME               the kube-proxy stand-in (runs in a node namespace)
//	lab endpoints                       the EndpointSlice writer (runs in the API namespace)
//	lab frr-config NAME=V4,V6 ...       print the router's bgpd.conf for these nodes (kind set-up)
//	lab bench l2 [--services 10000] [--rounds 10]
//	                                    the layer-2 benchmark on a running lab (figures and targets)
//	lab bench bgp [--services 1000] [--rounds 10]
//	                                    the BGP benchmark on a running lab (figures and targets)
//	lab probe --url URL                 an HTTP probe loop (runs in a client namespace, for bench)
//
// Flags come before positional arguments. See e2e/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/e2e/lab/backend"
	"github.com/herald-lb/herald/e2e/lab/endpoints"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = up(ctx, args)
	case "down":
		err = withDir(args, func(dir string, _ []string) error { return lab.Down(ctx, dir, os.Stderr) })
	case "status":
		err = withLab(args, func(l *lab.Lab, _ []string) error { return l.Status(ctx, os.Stdout) })
	case "demo":
		err = withLab(args, func(l *lab.Lab, _ []string) error { return l.Demo(ctx, os.Stdout) })
	case "kill":
		err = withLab(args, func(l *lab.Lab, pos []string) error { return kill(ctx, l, pos) })
	case "link":
		err = withLab(args, func(l *lab.Lab, pos []string) error { return link(ctx, l, pos) })
	case "restart":
		err = withLab(args, func(l *lab.Lab, pos []string) error {
			if len(pos) != 1 {
				return errors.New("usage: lab restart PROCESS")
			}
			return l.RestartProc(ctx, pos[0])
		})
	case "proxy":
		err = proxy(ctx, args)
	case "endpoints":
		err = endpointWriter(ctx, args)
	case "frr-config":
		err = frrConfig(args)
	case "bench":
		err = bench(ctx, args)
	case "probe":
		err = probe(ctx, args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// frrConfig prints the router configuration for nodes given as
// NAME=IPv4,IPv6.
func frrConfig(args []string) error {
	var nodes []lab.Node
	for _, a := range args {
		name, addrs, ok := strings.Cut(a, "=")
		v4s, v6s, ok2 := strings.Cut(addrs, ",")
		if !ok || !ok2 {
			return fmt.Errorf("%q: want NAME=IPv4,IPv6", a)
		}
		v4, err := netip.ParseAddr(v4s)
		if err != nil {
			return err
		}
		v6, err := netip.ParseAddr(v6s)
		if err != nil {
			return err
		}
		nodes = append(nodes, lab.Node{Name: name, IPv4: v4, IPv6: v6})
	}
	// One integrated frr.conf: the BFD profile the BGP neighbors name,
	// then bgpd's configuration.
	fmt.Print(strings.TrimPrefix(lab.BFDConfig(), "hostname herald-rtr\n!\n"))
	fmt.Print(lab.FRRConfig(nodes))
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lab up|demo|status|down|kill|link|restart|proxy|endpoints|frr-config|bench|probe [flags] (see e2e/README.md)")
	os.Exit(2)
}

func dirFlags(fs *flag.FlagSet) (dir, repo *string) {
	return fs.String("dir", "", "lab directory (default: <repo>/lab)"),
		fs.String("repo", "", "Herald's repository (default: found from the working directory)")
}

func resolve(dir, repo string) (string, string, error) {
	if repo == "" {
		r, err := lab.FindRepo()
		if err != nil {
			return "", "", err
		}
		repo = r
	}
	if dir == "" {
		dir = filepath.Join(repo, "lab")
	}
	return dir, repo, nil
}

func withDir(args []string, f func(dir string, pos []string) error) error {
	fs := flag.NewFlagSet("lab", flag.ExitOnError)
	dir, repo := dirFlags(fs)
	_ = fs.Parse(args)
	d, _, err := resolve(*dir, *repo)
	if err != nil {
		return err
	}
	return f(d, fs.Args())
}

func withLab(args []string, f func(l *lab.Lab, pos []string) error) error {
	return withDir(args, func(dir string, pos []string) error {
		l, err := lab.Attach(dir)
		if err != nil {
			return err
		}
		l.SetLog(os.Stderr)
		return f(l, pos)
	})
}

func up(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lab up", flag.ExitOnError)
	dir, repo := dirFlags(fs)
	nodes := fs.Int("nodes", 3, "number of nodes")
	noInstall := fs.Bool("no-install", false, "do not install missing Debian packages")
	keep := fs.Bool("keep-on-failure", false, "leave a failed lab up for inspection")
	var speakerArgs multiFlag
	fs.Var(&speakerArgs, "speaker-arg", "extra speaker argument (repeatable)")
	_ = fs.Parse(args)
	d, r, err := resolve(*dir, *repo)
	if err != nil {
		return err
	}
	t0 := time.Now()
	l, err := lab.Up(ctx, lab.Options{Dir: d, Repo: r, Nodes: *nodes, Install: !*noInstall,
		KeepOnFailure: *keep, SpeakerArgs: speakerArgs, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lab: up in %.1fs: %d nodes %v; kubectl: %s; logs: %s\n",
		time.Since(t0).Seconds(), len(l.NodeNames()), l.NodeNames(), l.KubectlWrapper(), filepath.Join(l.Dir, "logs"))
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

var signals = map[string]syscall.Signal{
	"KILL": syscall.SIGKILL, "STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT,
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
}

func kill(ctx context.Context, l *lab.Lab, pos []string) error {
	if len(pos) < 1 || len(pos) > 2 {
		return errors.New("usage: lab kill NODE [KILL|STOP|CONT|TERM]")
	}
	sig := syscall.SIGKILL
	if len(pos) == 2 {
		s, ok := signals[strings.TrimPrefix(strings.ToUpper(pos[1]), "SIG")]
		if !ok {
			return fmt.Errorf("unknown signal %q", pos[1])
		}
		sig = s
	}
	return l.SignalSpeaker(ctx, pos[0], sig)
}

func link(ctx context.Context, l *lab.Lab, pos []string) error {
	if len(pos) != 2 || (pos[1] != "up" && pos[1] != "down") {
		return errors.New("usage: lab link NODE up|down")
	}
	if pos[1] == "down" {
		return l.LinkDown(ctx, pos[0])
	}
	return l.LinkUp(ctx, pos[0])
}

// clientFlags are the flags of the in-lab processes.
func clientFlags(fs *flag.FlagSet) (kubeconfig, health *string, zopts *zap.Options) {
	kubeconfig = fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig (default: in-cluster)")
	health = fs.String("health-addr", "", "address for /healthz (empty: none)")
	zopts = &zap.Options{}
	zopts.BindFlags(fs)
	return
}

func clientset(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func proxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lab proxy", flag.ExitOnError)
	node := fs.String("node", os.Getenv("NODE_NAME"), "this node's name")
	kubeconfig, health, zopts := clientFlags(fs)
	_ = fs.Parse(args)
	if *node == "" {
		return errors.New("--node is required")
	}
	cs, err := clientset(*kubeconfig)
	if err != nil {
		return err
	}
	log := zap.New(zap.UseFlagOptions(zopts)).WithName("lab-proxy")
	p := backend.NewProxy(*node, cs, backend.IPLoopback{}, log)
	return runWithHealth(ctx, *health, p.Synced, func(ctx context.Context) error { return p.Run(ctx, 30*time.Second) })
}

func endpointWriter(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lab endpoints", flag.ExitOnError)
	kubeconfig, health, zopts := clientFlags(fs)
	_ = fs.Parse(args)
	cs, err := clientset(*kubeconfig)
	if err != nil {
		return err
	}
	log := zap.New(zap.UseFlagOptions(zopts)).WithName("lab-endpoints")
	w := endpoints.NewWriter(cs, log)
	return runWithHealth(ctx, *health, w.Synced, func(ctx context.Context) error { return w.Run(ctx, 30*time.Second) })
}

func runWithHealth(ctx context.Context, addr string, ready <-chan struct{}, run func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	if addr != "" {
		g.Go(func() error { return lab.ServeHealth(ctx, addr, ready) })
	}
	g.Go(func() error {
		err := run(ctx)
		if err == nil {
			err = context.Canceled // stop the health server too
		}
		return err
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// bench runs a benchmark on a running lab: `lab bench l2|bgp [flags]`.
func bench(ctx context.Context, args []string) error {
	if len(args) >= 1 && args[0] == "bgp" {
		return benchBGP(ctx, args[1:])
	}
	if len(args) < 1 || args[0] != "l2" {
		return errors.New("usage: lab bench l2 [--services N] [--rounds N] [--kinds sigstop,linkdown,sigkill,sigterm] [--families ipv4,ipv6] [--dir lab]")
	}
	fs := flag.NewFlagSet("lab bench l2", flag.ExitOnError)
	dir, repo := dirFlags(fs)
	var o lab.L2BenchOptions
	fs.IntVar(&o.Services, "services", 10000, "filler Services (announced, no backend)")
	fs.IntVar(&o.SpreadIPs, "spread", 300, "filler Services counted for the spread figure")
	fs.IntVar(&o.Rounds, "rounds", 10, "failover rounds per failure kind and family")
	fs.IntVar(&o.Workers, "workers", 16, "concurrent creators")
	kinds := fs.String("kinds", "sigstop,linkdown,sigkill,sigterm", "failure kinds")
	fams := fs.String("families", "ipv4,ipv6", "families")
	fs.DurationVar(&o.ProbeEvery, "probe-every", 20*time.Millisecond, "interval of the HTTP probe timing the failover")
	fs.DurationVar(&o.ProbeTimeout, "probe-timeout", 200*time.Millisecond, "deadline of each probe request")
	fs.DurationVar(&o.TermEvery, "term-every", 50*time.Millisecond, "interval of the probe whose failures are counted across SIGTERM")
	fs.DurationVar(&o.IdleWindow, "idle", 45*time.Second, "window for the speakers' idle CPU")
	fs.DurationVar(&o.ReturnWatch, "return-watch", 5*time.Second, "how long a restored node is watched before settling")
	fs.BoolVar(&o.KeepServices, "keep", false, "keep the bench's Services at the end")
	fs.BoolVar(&o.NoFailovers, "no-failovers", false, "stop after the scale, memory and idle figures")
	fs.BoolVar(&o.Reuse, "reuse", false, "reuse the Services an earlier run kept (--keep): no spread and scale phases")
	_ = fs.Parse(args[1:])
	for _, k := range strings.Split(*kinds, ",") {
		switch k = strings.TrimSpace(k); k {
		case lab.FailSIGSTOP, lab.FailLinkDown, lab.FailSIGKILL, lab.FailSIGTERM:
			o.Kinds = append(o.Kinds, k)
		case "":
		default:
			return fmt.Errorf("unknown failure kind %q", k)
		}
	}
	l, families, err := attachForBench(*dir, *repo, *fams)
	if err != nil {
		return err
	}
	o.Families, o.Log = families, os.Stderr
	_, err = l.BenchL2(ctx, o, os.Stdout)
	return err
}

// probe is the HTTP probe loop the benchmark runs in a client namespace.
func probe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lab probe", flag.ExitOnError)
	url := fs.String("url", "", "URL to probe")
	every := fs.Duration("every", 20*time.Millisecond, "interval between requests")
	timeout := fs.Duration("timeout", 200*time.Millisecond, "deadline of each request")
	_ = fs.Parse(args)
	if *url == "" {
		return errors.New("--url is required")
	}
	return lab.RunHTTPProbe(ctx, os.Stdout, *url, *every, *timeout)
}
