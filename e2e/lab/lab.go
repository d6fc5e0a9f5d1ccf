package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/herald-lb/herald/api/v1beta1"
)

// Options configure Up.
type Options struct {
	// Dir holds the lab's state, credentials, kubeconfigs and logs.
	Dir string
	// Repo is the repository root: binaries in Repo/bin, CRDs in
	// Repo/manifests/crd/bases.
	Repo string
	// Nodes is the number of node namespaces (default 3).
	Nodes int
	// Install installs missing Debian packages with apt-get.
	Install bool
	// KeepOnFailure leaves a failed lab up for inspection instead of
	// tearing it down.
	KeepOnFailure bool
	// SpeakerArgs are added to every speaker's command line.
	SpeakerArgs []string
	// Log receives progress lines (default: discard).
	Log io.Writer
}

// Lab is a running netns lab. Its state lives in Dir, so any process may
// Attach to a lab another one started.
type Lab struct {
	Dir   string
	state labState
	log   io.Writer
}

// labState is saved as Dir/state.json.
type labState struct {
	Repo    string              `json:"repo"`
	Nodes   []Node              `json:"nodes"`
	Procs   map[string]ProcSpec `json:"procs"`
	Speaker bool                `json:"speaker"`
	Started time.Time           `json:"started"`
}

func (l *Lab) statePath() string { return filepath.Join(l.Dir, "state.json") }

func (l *Lab) saveState() error {
	b, err := json.MarshalIndent(l.state, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(l.statePath(), b, 0o644)
}

// Attach returns the lab whose state is in dir.
func Attach(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l := &Lab{Dir: dir, log: io.Discard}
	b, err := os.ReadFile(l.statePath())
	if err != nil {
		return nil, fmt.Errorf("no lab in %s (run `lab up`): %w", dir, err)
	}
	if err := json.Unmarshal(b, &l.state); err != nil {
		return nil, fmt.Errorf("%s: %w", l.statePath(), err)
	}
	return l, nil
}

// SetLog sets where progress lines go.
func (l *Lab) SetLog(w io.Writer) { l.log = w }

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.log, "lab: "+format+"\n", args...)
}

// Files in Dir.
func (l *Lab) Kubeconfig() string { return filepath.Join(l.Dir, "kubeconfig") }

// InLabKubeconfig is the kubeconfig the lab's processes use from inside
// the namespaces (server on the node segment).
func (l *Lab) InLabKubeconfig() string { return filepath.Join(l.Dir, "kubeconfig.lab") }

// KubectlWrapper is a script running kubectl against the lab.
func (l *Lab) KubectlWrapper() string { return filepath.Join(l.Dir, "kubectl") }

// Bin is the path of one of the repository's binaries.
func (l *Lab) Bin(name string) string { return filepath.Join(l.state.Repo, "bin", name) }

// Repo is the repository root the lab runs binaries from.
func (l *Lab) Repo() string { return l.state.Repo }

// Nodes are the lab's nodes.
func (l *Lab) Nodes() []Node { return append([]Node(nil), l.state.Nodes...) }

// Process names.
const (
	ProcEtcd       = "etcd"
	ProcAPIServer  = "kube-apiserver"
	ProcController = "controller"
	ProcEndpoints  = "endpoints"
)

// ProcSpeaker and ProcProxy name a node's processes.
func ProcSpeaker(node string) string { return "speaker-" + node }
func ProcProxy(node string) string   { return "proxy-" + node }

// Up builds the lab from nothing: it tears down leftovers of an earlier lab
// in the same places first, and (unless KeepOnFailure) tears down what it
// built when a step fails.
func Up(ctx context.Context, opts Options) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (network namespaces, veth, FRR)")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("nodes must be 1..%d, not %d", MaxNodes, opts.Nodes)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Repo == "" {
		return nil, errors.New("repo must be set")
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(opts.Repo, "lab")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	l = &Lab{Dir: dir, log: opts.Log}
	l.state = labState{Repo: opts.Repo, Procs: map[string]ProcSpec{}, Started: time.Now()}
	for i := 1; i <= opts.Nodes; i++ {
		l.state.Nodes = append(l.state.Nodes, nodePlan(i))
	}

	if Leftovers(ctx, dir) {
		l.logf("tearing down the leftovers of an earlier lab")
		if err := Down(ctx, dir, opts.Log); err != nil {
			return nil, fmt.Errorf("tear down leftovers: %w", err)
		}
	}
	if opts.Install {
		if err := EnsurePackages(ctx, opts.Log); err != nil {
			return nil, err
		}
	} else if m := MissingPackages(); len(m) > 0 {
		return nil, fmt.Errorf("missing Debian packages %v (install them, or let `lab up` do it)", m)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl", "controller", "lab"} {
		if _, err := os.Stat(l.Bin(b)); err != nil {
			return nil, fmt.Errorf("missing %s: run `make tools build`", l.Bin(b))
		}
	}
	if _, err := os.Stat(l.Bin("speaker")); err == nil {
		l.state.Speaker = true
	}

	if err := os.MkdirAll(l.logDir(), 0o755); err != nil {
		return nil, err
	}
	old, _ := filepath.Glob(filepath.Join(l.logDir(), "*.log"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	if err := l.saveState(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && !opts.KeepOnFailure {
			l.logf("up failed (%v); tearing down (logs stay in %s)", err, l.logDir())
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if derr := Down(dctx, dir, opts.Log); derr != nil {
				err = errors.Join(err, fmt.Errorf("tear down: %w", derr))
			}
			l = nil
		}
	}()

	step := func(what string, f func() error) error {
		t0 := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		l.logf("%-44s %6.2fs", what, time.Since(t0).Seconds())
		return nil
	}
	var p *pki
	steps := []struct {
		what string
		f    func() error
	}{
		{"network: namespaces, bridge, veths, addresses", func() error { return l.buildNetwork(ctx) }},
		{"credentials and kubeconfigs", func() error {
			var err error
			if p, err = newPKI(filepath.Join(l.Dir, "pki")); err != nil {
				return err
			}
			if err := p.writeKubeconfig(l.Kubeconfig(), "https://"+net.JoinHostPort(MgmtAPI.Addr().String(), strconv.Itoa(APIPort))); err != nil {
				return err
			}
			return p.writeKubeconfig(l.InLabKubeconfig(), "https://"+net.JoinHostPort(APIV4.String(), strconv.Itoa(APIPort)))
		}},
		{"etcd and kube-apiserver (ready)", func() error { return l.startAPI(ctx, p) }},
		{"CRDs, namespace " + v1beta1.Namespace + ", Node objects", func() error { return l.setupCluster(ctx) }},
		{"FRR in " + NetnsRouter, func() error {
			specs, err := l.frrSpecs()
			if err != nil {
				return err
			}
			l.addSpecs(specs...)
			return l.startFRR(ctx, specs)
		}},
		{"controller, endpoints, proxies, speakers", func() error { return l.startHerald(ctx, opts.SpeakerArgs) }},
	}
	for _, s := range steps {
		if err := step(s.what, s.f); err != nil {
			return l, err
		}
	}
	if err := l.writeKubectlWrapper(); err != nil {
		return l, err
	}
	return l, l.saveState()
}

func (l *Lab) addSpecs(specs ...ProcSpec) {
	for _, s := range specs {
		l.state.Procs[s.Name] = s
	}
	_ = l.saveState()
}

// startAPI starts etcd and kube-apiserver in the API namespace and waits
// for /readyz.
func (l *Lab) startAPI(ctx context.Context, p *pki) error {
	etcdURL := "http://127.0.0.1:2379"
	etcd := ProcSpec{Name: ProcEtcd, Netns: NetnsAPI, Argv: []string{l.Bin("etcd"),
		"--name", "lab", "--data-dir", filepath.Join(l.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "lab=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn"}}
	api := ProcSpec{Name: ProcAPIServer, Netns: NetnsAPI, Argv: []string{l.Bin("kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "0.0.0.0", "--secure-port", strconv.Itoa(APIPort),
		"--advertise-address", APIV4.String(),
		"--cert-dir", filepath.Join(l.Dir, "apiserver"),
		"--tls-cert-file", p.CertFile, "--tls-private-key-file", p.KeyFile,
		"--token-auth-file", p.Tokens,
		"--authorization-mode", "RBAC",
		"--service-account-key-file", p.SAKey, "--service-account-signing-key-file", p.SAKey,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", ServiceCIDRs,
		"--enable-priority-and-fairness=false", "--profiling=false",
		"--v", "1"}}
	l.addSpecs(etcd, api)
	if err := l.startProc(etcd); err != nil {
		return err
	}
	if err := l.startProc(api); err != nil {
		return err
	}
	return pollUntil(ctx, 60*time.Second, func() (bool, error) {
		if !l.ProcRunning(ProcAPIServer) {
			return false, fmt.Errorf("kube-apiserver exited (see %s)", l.LogFile(ProcAPIServer))
		}
		if !l.ProcRunning(ProcEtcd) {
			return false, fmt.Errorf("etcd exited (see %s)", l.LogFile(ProcEtcd))
		}
		return l.apiReady(ctx) == nil, nil
	})
}

// apiReady asks kube-apiserver's /readyz through the host kubeconfig.
func (l *Lab) apiReady(ctx context.Context) error {
	cfg, err := clientcmd.LoadFromFile(l.Kubeconfig())
	if err != nil {
		return err
	}
	cl := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cl.CertificateAuthorityData)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cl.Server+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}

// Kubectl runs bin/kubectl against the lab from the machine.
func (l *Lab) Kubectl(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, l.Bin("kubectl"), append([]string{"--kubeconfig", l.Kubeconfig()}, args...)...)
	cmd.Stdin = stdin
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// setupCluster installs the CRDs and Herald's namespace with kubectl and
// registers the nodes.
func (l *Lab) setupCluster(ctx context.Context) error {
	crds := filepath.Join(l.state.Repo, "manifests", "crd", "bases")
	if _, err := l.Kubectl(ctx, nil, "apply", "--server-side", "-f", crds); err != nil {
		return err
	}
	if _, err := l.Kubectl(ctx, nil, "create", "namespace", v1beta1.Namespace); err != nil {
		return err
	}
	if _, err := l.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return err
	}
	cs, err := l.Clientset()
	if err != nil {
		return err
	}
	for _, n := range l.state.Nodes {
		if err := registerNode(ctx, cs, n); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// Clientset returns a client for the lab's API server.
func (l *Lab) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig())
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// registerNode creates the Node object a kubelet would: addresses, Ready,
// network available. Nothing else writes Node status in the lab, so what
// tests set there stays.
func registerNode(ctx context.Context, cs kubernetes.Interface, n Node) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
		"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
	}}}
	created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	created.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: n.IPv4.String()},
		{Type: corev1.NodeInternalIP, Address: n.IPv6.String()},
		{Type: corev1.NodeHostName, Address: n.Name},
	}
	created.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LabReady", Message: "the lab's node namespace is up", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "LabNetwork", Message: "the lab's node segment is up", LastHeartbeatTime: now, LastTransitionTime: now},
	}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

// heraldSpecs returns the specs of Herald's processes and the lab's
// stand-ins.
func (l *Lab) heraldSpecs(speakerArgs []string) []ProcSpec {
	kc := l.InLabKubeconfig()
	hp := func(a netip.Addr, port int) string { return net.JoinHostPort(a.String(), strconv.Itoa(port)) }
	specs := []ProcSpec{
		{Name: ProcController, Netns: NetnsAPI, Argv: []string{l.Bin("controller"), "--kubeconfig", kc,
			"--leader-elect=false", "--metrics-addr", hp(APIV4, MetricsPort), "--health-addr", hp(APIV4, HealthPort)}},
		{Name: ProcEndpoints, Netns: NetnsAPI, Argv: []string{l.Bin("lab"), "endpoints", "--kubeconfig", kc,
			"--health-addr", hp(APIV4, ProxyHealthPort)}},
	}
	for _, n := range l.state.Nodes {
		specs = append(specs, ProcSpec{Name: ProcProxy(n.Name), Netns: n.Netns, Argv: []string{l.Bin("lab"), "proxy",
			"--node", n.Name, "--kubeconfig", kc, "--health-addr", hp(n.IPv4, ProxyHealthPort)}})
		if !l.state.Speaker {
			continue
		}
		var join []string
		for _, o := range l.state.Nodes {
			if o.Name != n.Name {
				join = append(join, hp(o.IPv4, MemberlistPort))
			}
		}
		argv := []string{l.Bin("speaker"), "--node-name", n.Name, "--kubeconfig", kc, "--namespace", v1beta1.Namespace,
			"--memberlist-bind", hp(n.IPv4, MemberlistPort), "--memberlist-join", strings.Join(join, ","),
			"--metrics-addr", hp(n.IPv4, MetricsPort), "--health-addr", hp(n.IPv4, HealthPort)}
		specs = append(specs, ProcSpec{Name: ProcSpeaker(n.Name), Netns: n.Netns, Argv: append(argv, speakerArgs...)})
	}
	return specs
}

// startHerald starts the controller, the EndpointSlice writer, a proxy and
// (when bin/speaker exists) a speaker per node, and waits until each
// listens.
func (l *Lab) startHerald(ctx context.Context, speakerArgs []string) error {
	specs := l.heraldSpecs(speakerArgs)
	l.addSpecs(specs...)
	for _, s := range specs {
		if err := l.startProc(s); err != nil {
			return err
		}
	}
	if !l.state.Speaker {
		l.logf("no %s: speakers not started (nothing answers ARP/NDP or BGP until it exists)", l.Bin("speaker"))
	}
	for _, s := range specs {
		if err := l.waitProcListening(ctx, s.Name, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// healthURL is where a process answers once it is up.
func (l *Lab) healthURL(name string) (host, url string, ok bool) {
	u := func(a netip.Addr, port int, path string) string {
		return "http://" + net.JoinHostPort(a.String(), strconv.Itoa(port)) + path
	}
	switch name {
	case ProcController:
		return "api", u(APIV4, HealthPort, "/healthz"), true
	case ProcEndpoints:
		return "api", u(APIV4, ProxyHealthPort, "/healthz"), true
	}
	for _, n := range l.state.Nodes {
		switch name {
		case ProcProxy(n.Name):
			return n.Name, u(n.IPv4, ProxyHealthPort, "/healthz"), true
		case ProcSpeaker(n.Name):
			// The speaker's health path is its own business: any HTTP
			// answer on the health port means it is up.
			return n.Name, u(n.IPv4, HealthPort, "/"), true
		}
	}
	return "", "", false
}

// waitProcListening waits until process name answers HTTP on its health
// address (any status), failing early when it exits.
func (l *Lab) waitProcListening(ctx context.Context, name string, d time.Duration) error {
	host, url, ok := l.healthURL(name)
	if !ok {
		return nil
	}
	return pollUntil(ctx, d, func() (bool, error) {
		if !l.ProcRunning(name) {
			return false, fmt.Errorf("%s exited (see %s)", name, l.LogFile(name))
		}
		out, _ := l.Exec(ctx, host, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url)
		code := strings.TrimSpace(string(out))
		return code != "" && code != "000", nil
	})
}

func (l *Lab) writeKubectlWrapper() error {
	script := fmt.Sprintf("#!/bin/sh\n# kubectl against the Herald lab's API server (written by `lab up`).\nexec %q --kubeconfig %q \"$@\"\n",
		l.Bin("kubectl"), l.Kubeconfig())
	return os.WriteFile(l.KubectlWrapper(), []byte(script), 0o755)
}

// Leftovers reports whether anything of a lab in dir, or any lab
// namespace, still exists.
func Leftovers(ctx context.Context, dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return true
	}
	if _, names := recordedProcs(dir); len(names) > 0 {
		return true
	}
	return len(labNamespaces(ctx)) > 0 || linkExists(MgmtLinkHost)
}

// runtimeFiles are what Down removes from the lab directory; logs/ stays
// for post-mortems (Up clears it).
var runtimeFiles = []string{"run", "pki", "etcd", "apiserver", "frr", "kubeconfig", "kubeconfig.lab", "kubectl", "demo.yaml", "demo-bgp.yaml", "state.json"}

// Down tears down the lab in dir and every lab namespace: it ends the
// recorded processes and every process left in a lab namespace, deletes
// the namespaces, the management link and any mount left behind, and
// removes the runtime files. It works without the state file (after a
// crashed Up) and does nothing when nothing is left.
func Down(ctx context.Context, dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var errs []error
	recs, names := recordedProcs(dir)
	var list []pidRecord
	for _, n := range names {
		list = append(list, recs[n])
	}
	if err := terminateAll(ctx, list, time.Second); err != nil {
		errs = append(errs, err)
	}
	nss := labNamespaces(ctx)
	var inNS []pidRecord
	for _, ns := range nss {
		inNS = append(inNS, netnsPids(ctx, ns)...)
	}
	if len(inNS) > 0 {
		fmt.Fprintf(log, "lab: ending %d process(es) left in the lab namespaces\n", len(inNS))
		if err := terminateAll(ctx, inNS, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range nss {
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	// The management veth dies with herald-api, asynchronously; wait for
	// it, so the next Up can make it again, and delete it if it stays.
	_ = pollUntil(ctx, 5*time.Second, func() (bool, error) { return !linkExists(MgmtLinkHost), nil })
	if linkExists(MgmtLinkHost) {
		if _, err := run(ctx, "ip", "link", "del", MgmtLinkHost); err != nil && linkExists(MgmtLinkHost) {
			errs = append(errs, err)
		}
	}
	for _, m := range labMounts(dir) {
		if _, err := run(ctx, "umount", "-l", m); err != nil {
			errs = append(errs, err)
		}
	}
	// `ip netns add` bind-mounts /run/netns on itself; once no namespace
	// is left there, that mount goes too.
	if ents, err := os.ReadDir("/run/netns"); err == nil && len(ents) == 0 && isMountPoint("/run/netns") {
		if _, err := run(ctx, "umount", "/run/netns"); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range runtimeFiles {
		if err := os.RemoveAll(filepath.Join(dir, f)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(nss) > 0 || len(names) > 0 {
		fmt.Fprintf(log, "lab: down: %d process record(s), %d namespace(s) removed\n", len(names), len(nss))
	}
	return errors.Join(errs...)
}

// labMounts lists mount points of the lab: its namespaces' bind mounts and
// anything mounted under dir.
func labMounts(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if strings.HasPrefix(mp, "/run/netns/") && isLabNetns(strings.TrimPrefix(mp, "/run/netns/")) ||
			strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Deepest first.
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

func isMountPoint(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// Status writes what runs and what answers.
func (l *Lab) Status(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "lab in %s (up since %s)\n", l.Dir, l.state.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "namespaces: %s\n", strings.Join(labNamespaces(ctx), " "))
	var names []string
	for n := range l.state.Procs {
		names = append(names, n)
	}
	sort.Strings(names)
	bad := 0
	for _, n := range names {
		rec, ok := l.procRecord(n)
		st := "not running"
		if ok {
			_, s, _ := procStat(rec.Pid)
			st = fmt.Sprintf("pid %d state %c", rec.Pid, s)
		} else {
			bad++
		}
		fmt.Fprintf(w, "  %-16s %-22s log %s\n", n, st, l.LogFile(n))
	}
	if err := l.apiReady(ctx); err != nil {
		fmt.Fprintf(w, "kube-apiserver: not ready: %v\n", err)
		bad++
	} else {
		fmt.Fprintf(w, "kube-apiserver: ready (kubectl: %s)\n", l.KubectlWrapper())
		if out, err := l.Kubectl(ctx, nil, "get", "nodes,svc", "-A", "-o", "wide"); err == nil {
			w.Write(out)
		}
	}
	if out, err := l.Vtysh(ctx, "show bgp summary"); err == nil {
		fmt.Fprintf(w, "router (FRR):\n%s", out)
	}
	if bad > 0 {
		return fmt.Errorf("%d part(s) of the lab are down", bad)
	}
	return nil
}

// pollUntil calls f every 100ms until it returns true, an error, or d
// passes.
func pollUntil(parent context.Context, d time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			return fmt.Errorf("not done after %s: %w", d, ctx.Err())
		case <-t.C:
		}
	}
}

// ----- Driver (netns) -----

// NodeNames implements Driver.
func (l *Lab) NodeNames() []string {
	var out []string
	for _, n := range l.state.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func (l *Lab) node(name string) (Node, error) {
	for _, n := range l.state.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("no lab node %q", name)
}

// NodeAddress implements Driver.
func (l *Lab) NodeAddress(node string, f Family) (netip.Addr, error) {
	n, err := l.node(node)
	if err != nil {
		return netip.Addr{}, err
	}
	if f == IPv6 {
		return n.IPv6, nil
	}
	return n.IPv4, nil
}

// NodeMAC implements Driver: the MAC eth0 has now, read with ip.
func (l *Lab) NodeMAC(ctx context.Context, node string) (net.HardwareAddr, error) {
	return l.linkMAC(ctx, node, "eth0")
}

// linkMAC reads the MAC of host's interface ifname.
func (l *Lab) linkMAC(ctx context.Context, host, ifname string) (net.HardwareAddr, error) {
	out, err := l.Exec(ctx, host, "ip", "-j", "link", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	return parseLinkMAC(out)
}

// netnsOf maps a host name to its namespace.
func (l *Lab) netnsOf(host string) (string, error) {
	switch host {
	case HostRouter:
		return NetnsRouter, nil
	case HostClient:
		return NetnsClient, nil
	case HostL2Client:
		return NetnsL2Client, nil
	case "api":
		return NetnsAPI, nil
	}
	n, err := l.node(host)
	return n.Netns, err
}

// Exec implements Driver: argv runs in the host's namespace.
func (l *Lab) Exec(ctx context.Context, host string, argv ...string) ([]byte, error) {
	ns, err := l.netnsOf(host)
	if err != nil {
		return nil, err
	}
	return run(ctx, append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

// Command implements Driver: `ip netns exec` execs argv, so the command's
// process is argv's own and signals reach it.
func (l *Lab) Command(ctx context.Context, host string, argv ...string) (*exec.Cmd, error) {
	ns, err := l.netnsOf(host)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...), nil
}

// HasSpeaker implements Driver.
func (l *Lab) HasSpeaker() bool { return l.state.Speaker }

// SignalSpeaker implements Driver.
func (l *Lab) SignalSpeaker(_ context.Context, node string, sig syscall.Signal) error {
	return l.Signal(ProcSpeaker(node), sig)
}

// RestartSpeaker implements Driver.
func (l *Lab) RestartSpeaker(ctx context.Context, node string) error {
	return l.RestartProc(ctx, ProcSpeaker(node))
}

// RestartProc stops (if it runs) and starts lab process name, and waits
// until it listens.
func (l *Lab) RestartProc(ctx context.Context, name string) error {
	if err := l.StopProc(ctx, name, 5*time.Second); err != nil {
		return err
	}
	if err := l.StartProc(name); err != nil {
		return err
	}
	return l.waitProcListening(ctx, name, 30*time.Second)
}

// StopController implements Driver.
func (l *Lab) StopController(ctx context.Context) error {
	return l.StopProc(ctx, ProcController, 10*time.Second)
}

// StartController implements Driver.
func (l *Lab) StartController(ctx context.Context) error {
	if err := l.StartProc(ProcController); err != nil {
		return err
	}
	return l.waitProcListening(ctx, ProcController, 30*time.Second)
}

// LinkDown implements Driver.
func (l *Lab) LinkDown(ctx context.Context, node string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	return run1(ctx, ipn(n.Netns, "link", "set", "eth0", "down"))
}

// LinkUp implements Driver. The kernel dropped the node's default routes
// with the link; they are put back, as a network manager would.
func (l *Lab) LinkUp(ctx context.Context, node string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	return runAll(ctx,
		ipn(n.Netns, "link", "set", "eth0", "up"),
		ipn(n.Netns, "route", "replace", "default", "via", RouterV4.String()),
		ipn(n.Netns, "-6", "route", "replace", "default", "via", RouterV6.String()))
}

// Router implements Driver.
func (l *Lab) Router() RouterInfo {
	return RouterInfo{ASN: RouterASN, NodeASN: NodeASN, IPv4: RouterV4, IPv6: RouterV6}
}

// Plan implements Driver.
func (l *Lab) Plan() AddressPlan { return NetnsPlan }
