//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/k8s"
)

// The suite's environment:
//
//	HERALD_E2E_DRIVER=netns|kind   which Driver (default netns)
//	HERALD_LAB_DIR=DIR             reuse the netns lab in DIR (left up)
//	HERALD_E2E_DIR=DIR             where the suite's own netns lab lives
//	                               (default <repo>/lab-e2e; torn down at the end)
//	HERALD_REQUIRE_LAB=1           no lab is a failure, not a skip (make e2e)
//	HERALD_E2E_FIGURES=FILE        where figures go (default <lab dir>/figures.jsonl)
//	HERALD_KIND_*                  the kind driver's settings, see kindDriver
const testNS = "herald-e2e"

var (
	drv       lab.Driver
	cl        client.Client
	plan      lab.AddressPlan
	macNode   = map[string]string{} // MAC (lower case) -> node name
	skipWhy   string                // the whole suite cannot run, and why
	figureOut string
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	teardown, err := openDriver(ctx)
	if err != nil {
		skipWhy = err.Error()
		fmt.Fprintln(os.Stderr, "e2e:", skipWhy)
		return m.Run()
	}
	code := m.Run()
	printFigures()
	if teardown != nil {
		teardown()
	}
	return code
}

// openDriver brings up (or attaches to) the lab and prepares the cluster
// for the suite. The returned function tears down what it brought up.
func openDriver(ctx context.Context) (teardown func(), err error) {
	switch os.Getenv("HERALD_E2E_DRIVER") {
	case "kind":
		k, err := kindDriver(ctx)
		if err != nil {
			return nil, err
		}
		drv = k
	case "", "netns":
		if os.Geteuid() != 0 {
			return nil, errors.New("the e2e suite needs root: its lab is made of network namespaces (run `sudo make e2e`)")
		}
		if dir := os.Getenv("HERALD_LAB_DIR"); dir != "" {
			l, err := lab.Attach(dir)
			if err != nil {
				return nil, err
			}
			drv, figureOut = l, filepath.Join(l.Dir, "figures.jsonl")
			break
		}
		dir := os.Getenv("HERALD_E2E_DIR")
		if dir == "" {
			dir = filepath.Join(repoRoot(), "lab-e2e")
		}
		t0 := time.Now()
		l, err := lab.Up(ctx, lab.Options{Dir: dir, Repo: repoRoot(), Install: true, Log: os.Stderr})
		if err != nil {
			return nil, fmt.Errorf("bring the lab up: %w", err)
		}
		fmt.Fprintf(os.Stderr, "e2e: lab up in %.1fs in %s\n", time.Since(t0).Seconds(), dir)
		drv, figureOut = l, filepath.Join(l.Dir, "figures.jsonl")
		teardown = func() {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := lab.Down(dctx, dir, os.Stderr); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: lab down:", err)
			}
		}
	default:
		return nil, fmt.Errorf("unknown HERALD_E2E_DRIVER %q (netns or kind)", os.Getenv("HERALD_E2E_DRIVER"))
	}
	if f := os.Getenv("HERALD_E2E_FIGURES"); f != "" {
		figureOut = f
	}
	defer func() {
		if err != nil && teardown != nil {
			teardown()
		}
	}()
	plan = drv.Plan()
	cfg, err := clientcmd.BuildConfigFromFlags("", drv.Kubeconfig())
	if err != nil {
		return teardown, err
	}
	scheme, err := k8s.NewScheme()
	if err != nil {
		return teardown, err
	}
	if cl, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return teardown, err
	}
	for _, n := range drv.NodeNames() {
		mac, err := drv.NodeMAC(ctx, n)
		if err != nil {
			return teardown, fmt.Errorf("MAC of node %s: %w", n, err)
		}
		macNode[strings.ToLower(mac.String())] = n
	}
	return teardown, setupCluster(ctx)
}

// kindDriver configures the kind driver from HERALD_KIND_* variables.
func kindDriver(ctx context.Context) (*lab.Kind, error) {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	addr := func(k string) netip.Addr {
		a, _ := netip.ParseAddr(os.Getenv(k))
		return a
	}
	rng := func(prefix string) lab.Range {
		return lab.Range{V4First: addr(prefix + "_V4_FIRST"), V4Last: addr(prefix + "_V4_LAST"),
			V6First: addr(prefix + "_V6_FIRST"), V6Last: addr(prefix + "_V6_LAST")}
	}
	return lab.NewKind(ctx, lab.KindOptions{
		Kubeconfig: env("HERALD_KIND_KUBECONFIG", os.Getenv("KUBECONFIG")),
		RouterInfo: lab.RouterInfo{ASN: lab.RouterASN, NodeASN: lab.NodeASN,
			IPv4: addr("HERALD_KIND_ROUTER_V4"), IPv6: addr("HERALD_KIND_ROUTER_V6")},
		Plan: lab.AddressPlan{Main: rng("HERALD_KIND_MAIN"), Gold: rng("HERALD_KIND_GOLD"),
			Spare: rng("HERALD_KIND_SPARE"), BGP: rng("HERALD_KIND_BGP")},
	})
}

// Suite-wide objects: the test namespace, the main pool (first choice for
// the test namespace), the gold pool (only on request) and an
// L2Advertisement for the suite's pools.
const (
	poolMain  = "e2e"
	poolGold  = "e2e-gold"
	poolSpare = "e2e-spare"
)

func setupCluster(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}
	if err := cl.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	objs := []client.Object{
		&v1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Name: poolMain, Namespace: v1beta1.Namespace},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: plan.Main.Addresses(),
				ServiceAllocation: &v1beta1.ServiceAllocation{Priority: 1, Namespaces: []string{testNS}}},
		},
		&v1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Name: poolGold, Namespace: v1beta1.Namespace},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: plan.Gold.Addresses(), AutoAssign: ptr.To(false)},
		},
		&v1beta1.L2Advertisement{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e", Namespace: v1beta1.Namespace},
			Spec:       v1beta1.L2AdvertisementSpec{IPAddressPools: []string{poolMain, poolGold, poolSpare}},
		},
	}
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// requireLab skips (or fails, under HERALD_REQUIRE_LAB=1) a test when the
// suite has no lab.
func requireLab(t *testing.T) {
	t.Helper()
	if skipWhy == "" {
		return
	}
	if os.Getenv("HERALD_REQUIRE_LAB") == "1" {
		t.Fatalf("e2e cannot run: %s", skipWhy)
	}
	t.Skipf("e2e skipped: %s", skipWhy)
}

// requireSpeaker skips what needs Herald's speaker when the lab runs none.
func requireSpeaker(t *testing.T) {
	t.Helper()
	if !drv.HasSpeaker() {
		t.Skip("no speaker in the lab: bin/speaker is not built yet (layer-2 speaker, issue 4)")
	}
}

// requireNetnsLab skips, saying why, what only the netns lab can do (not a
// kind cluster), and returns the lab; it requires a speaker too.
func requireNetnsLab(t *testing.T, why string) *lab.Lab {
	t.Helper()
	requireLab(t)
	requireSpeaker(t)
	l, ok := drv.(*lab.Lab)
	if !ok {
		t.Skip("needs the netns lab: " + why)
	}
	return l
}

// eventsAbout lists the events in ns of reason about objects of kind
// named name (any name when empty).
func eventsAbout(t *testing.T, ns, kind, name, reason string) []corev1.Event {
	t.Helper()
	var list corev1.EventList
	if err := cl.List(ctxT(t), &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Reason == reason && e.InvolvedObject.Kind == kind && (name == "" || e.InvolvedObject.Name == name) {
			out = append(out, e)
		}
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls f every 100ms until it returns true or d passes, then
// fails with f's last explanation.
func eventually(t *testing.T, d time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s", what, d, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consistently checks f every 200ms for d and fails the first time it is
// false.
func consistently(t *testing.T, d time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, why := f(); !ok {
			t.Fatalf("%s: %s", what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// svcOpt changes a Service before it is created.
type svcOpt func(*corev1.Service)

func family(f lab.Family) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		if f == lab.IPv6 {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		} else {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
	}
}

func dualStack(s *corev1.Service) {
	s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
	s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
}

func annotate(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func port(p int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: fmt.Sprintf("p%d", p), Port: p, Protocol: corev1.ProtocolTCP}}
	}
}

func localPolicy(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

// newService creates a LoadBalancer Service in the test namespace (port 80,
// IPv4 unless told) and deletes it when the test ends.
func newService(t *testing.T, name string, opts ...svcOpt) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	family(lab.IPv4)(svc)
	for _, o := range opts {
		o(svc)
	}
	ctx := ctxT(t)
	// A leftover of an interrupted run goes first.
	_ = deleteAndWait(ctx, svc.DeepCopy())
	if err := cl.Create(ctx, svc); err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := deleteAndWait(context.Background(), svc.DeepCopy()); err != nil {
			t.Errorf("delete Service %s: %v", name, err)
		}
	})
	return svc
}

func deleteAndWait(ctx context.Context, o client.Object) error {
	if err := cl.Delete(ctx, o); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(o), o); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still there: %w", o.GetName(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getService(t *testing.T, name string) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	if err := cl.Get(ctxT(t), client.ObjectKey{Namespace: testNS, Name: name}, &svc); err != nil {
		t.Fatalf("get Service %s: %v", name, err)
	}
	return &svc
}

func ingressIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(ing.IP); err == nil {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// waitIPs waits until Service name has n EXTERNAL-IPs and returns them
// (IPv4 first).
func waitIPs(t *testing.T, name string, n int) []netip.Addr {
	t.Helper()
	var ips []netip.Addr
	eventually(t, 30*time.Second, "Service "+name+" gets its EXTERNAL-IPs", func() (bool, string) {
		var svc corev1.Service
		if err := cl.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, &svc); err != nil {
			return false, err.Error()
		}
		ips = ingressIPs(&svc)
		return len(ips) == n, fmt.Sprintf("ingress %v, want %d address(es)", ips, n)
	})
	return ips
}

// l2StatusNodes returns the nodes whose ServiceL2Status says they answer
// for the Service (and, when the status lists IPs, for ip).
func l2StatusNodes(ctx context.Context, svcName string, ip netip.Addr) ([]string, error) {
	var list v1beta1.ServiceL2StatusList
	if err := cl.List(ctx, &list); err != nil {
		return nil, err
	}
	var nodes []string
	for _, s := range list.Items {
		if s.Status.ServiceName != svcName || s.Status.ServiceNamespace != testNS {
			continue
		}
		if len(s.Status.IPs) > 0 && !containsString(s.Status.IPs, ip.String()) {
			continue
		}
		nodes = append(nodes, s.Status.Node)
	}
	sort.Strings(nodes)
	return nodes, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// macOwner asks the network which node answers for ip: ARP (exactly one
// MAC must answer) or NDP, from the L2 client.
func macOwner(ctx context.Context, ip netip.Addr) (string, error) {
	var mac string
	if ip.Is4() {
		macs, err := lab.ARPOwners(ctx, drv, lab.HostL2Client, ip)
		if err != nil {
			return "", err
		}
		if len(macs) != 1 {
			return "", fmt.Errorf("%d MACs answer ARP for %s: %v", len(macs), ip, macs)
		}
		mac = macs[0]
	} else {
		m, err := lab.NDPOwner(ctx, drv, lab.HostL2Client, ip)
		if err != nil {
			return "", err
		}
		mac = m
	}
	node, ok := macNode[mac]
	if !ok {
		return "", fmt.Errorf("%s answers for %s, and that is no node's MAC", mac, ip)
	}
	return node, nil
}

// waitOwner waits until the network and the ServiceL2Status objects agree
// on the node that answers for ip, and returns it. exact requires that the
// owner is the only node with a status for the Service (steady state);
// otherwise the owner must be among them (a dead node's status may linger).
func waitOwner(t *testing.T, svcName string, ip netip.Addr, exact bool, d time.Duration) string {
	t.Helper()
	var owner string
	eventually(t, d, fmt.Sprintf("one node answers for %s (Service %s) and its ServiceL2Status says so", ip, svcName), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		node, err := macOwner(ctx, ip)
		if err != nil {
			return false, err.Error()
		}
		st, err := l2StatusNodes(ctx, svcName, ip)
		if err != nil {
			return false, err.Error()
		}
		if exact && (len(st) != 1 || st[0] != node) || !containsString(st, node) {
			return false, fmt.Sprintf("the MAC of %s answers, ServiceL2Status names %v", node, st)
		}
		owner = node
		return true, ""
	})
	return owner
}

// waitCurl waits until curl from host to ip:port answers with want (any
// node when want is "") and returns the body.
func waitCurl(t *testing.T, host string, ip netip.Addr, p int, want string, d time.Duration) string {
	t.Helper()
	var body string
	eventually(t, d, fmt.Sprintf("curl %s from %s answers %q", lab.URL(ip, p), host, want), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, err := lab.Curl(ctx, drv, host, ip, p)
		if err != nil {
			return false, err.Error()
		}
		body = b
		return want == "" && b != "" || b == want, "answered " + b
	})
	return body
}

// figure records a measured value: in the test log and in the figures
// file, for reports across runs.
type figureRec struct {
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
	When  time.Time `json:"when"`
}

var (
	figMu   sync.Mutex
	figures []figureRec
)

func figure(t *testing.T, name string, d time.Duration) {
	t.Helper()
	t.Logf("FIGURE %s = %.3f s", name, d.Seconds())
	figMu.Lock()
	defer figMu.Unlock()
	rec := figureRec{Name: name, Value: d.Seconds(), Unit: "s", When: time.Now()}
	figures = append(figures, rec)
	if figureOut == "" {
		return
	}
	f, err := os.OpenFile(figureOut, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Logf("figures file: %v", err)
		return
	}
	defer f.Close()
	_ = json.NewEncoder(f).Encode(rec)
}

func printFigures() {
	figMu.Lock()
	defer figMu.Unlock()
	if len(figures) == 0 {
		return
	}
	fmt.Println("e2e figures:")
	for _, f := range figures {
		fmt.Printf("  %-44s %8.3f %s\n", f.Name, f.Value, f.Unit)
	}
	if figureOut != "" {
		fmt.Println("  (appended to " + figureOut + ")")
	}
}
