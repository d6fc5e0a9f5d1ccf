// Command scalebench measures a LoadBalancer controller at scale against a
// real kube-apiserver and etcd (envtest binaries). The controller is given
// as a command line after "--", so the same run can measure another
// implementation; "{kubeconfig}" in it is replaced by the kubeconfig path,
// which is also in $KUBECONFIG.
//
// Phases: create 5,000 then 10,000 Services (16 concurrent client-go
// creators, allocateLoadBalancerNodePorts: false) and report the time until
// all have an EXTERNAL-IP and p50/p99 create-to-IP latency; churn (delete
// 1,000 and create 1,000 at once); cold start (restart the controller with
// every Service assigned, create one more). It checks no IP is duplicated
// and no untouched Service's IP changes, and prints controller CPU-seconds
// and peak RSS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/k8s"
)

func main() {
	assets := flag.String("assets", "bin", "directory with kube-apiserver and etcd")
	crds := flag.String("crds", "manifests/crd/bases", "CRD directories to install (comma separated)")
	setup := flag.String("setup", "", "YAML applied before the controller starts (default: one Herald IPAddressPool 10.128.0.0/12)")
	counts := flag.String("counts", "5000,10000", "Service totals to grow to, in order")
	churn := flag.Int("churn", 1000, "Services deleted and created at once in the churn phase (0 skips)")
	workers := flag.Int("workers", 16, "concurrent creators")
	flag.Parse()
	cmdline := flag.Args()
	if len(cmdline) == 0 {
		fmt.Fprintln(os.Stderr, "usage: scalebench [flags] -- CONTROLLER-COMMAND [ARGS...]")
		os.Exit(2)
	}
	var totals []int
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bad --counts entry %q\n", s)
			os.Exit(2)
		}
		totals = append(totals, n)
	}
	b := &bench{workers: *workers, cmdline: cmdline}
	if err := b.run(*assets, strings.Split(*crds, ","), *setup, totals, *churn); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

type bench struct {
	workers int
	cmdline []string
	cfg     *rest.Config
	cs      *kubernetes.Clientset
	kubecfg string
	ctrl    *exec.Cmd
	ctrlLog *os.File

	mu      sync.Mutex
	created map[string]time.Time // name -> when the create call was sent
	gotIP   map[string]time.Time // name -> first time the watch showed an IP
	ips     map[string]string    // name -> IPs seen last
	changed []string             // "name: a -> b" for any IP change
	lastAPI time.Time            // when the last create/delete call of a phase returned
}

func (b *bench) run(assets string, crdDirs []string, setup string, totals []int, churn int) error {
	os.Setenv("KUBEBUILDER_ASSETS", assets)
	env := &envtest.Environment{CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: true}
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/12")
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start API server: %w", err)
	}
	defer env.Stop()
	user, err := env.AddUser(envtest.User{Name: "bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "scalebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.kubecfg = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(b.kubecfg, kc, 0o600); err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	b.cfg = cfg
	b.cs = kubernetes.NewForConfigOrDie(cfg)
	b.created, b.gotIP, b.ips = map[string]time.Time{}, map[string]time.Time{}, map[string]string{}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ns := range []string{v1beta1.Namespace, "bench"} {
		if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if err := b.applySetup(ctx, setup); err != nil {
		return err
	}
	go b.watch(ctx)

	b.ctrlLog, err = os.Create(filepath.Join(os.TempDir(), "scalebench-controller.log"))
	if err != nil {
		return err
	}
	fmt.Printf("controller: %s (log %s)\n", strings.Join(b.cmdline, " "), b.ctrlLog.Name())
	if err := b.startController(); err != nil {
		return err
	}
	defer b.stopController()

	have := 0
	fmt.Printf("%-28s %10s %10s %10s %10s %10s %10s\n", "phase", "all-IPs", "converged", "p50", "p99", "ctrl-CPU", "peak-RSS")
	fmt.Println("  (all-IPs: from the first API call; converged: after the last create/delete returned)")
	for _, total := range totals {
		names := names(have, total)
		t0 := time.Now()
		if err := b.create(ctx, names); err != nil {
			return err
		}
		b.lastAPI = time.Now()
		if err := b.waitAll(ctx, names, 10*time.Minute); err != nil {
			return err
		}
		b.report(fmt.Sprintf("grow %d->%d", have, total), names, t0)
		have = total
	}

	if churn > 0 && churn <= have {
		before := b.snapshot()
		del := names(0, churn)
		add := names(have, have+churn)
		t0 := time.Now()
		var wg sync.WaitGroup
		var delErr, addErr error
		wg.Add(2)
		go func() { defer wg.Done(); delErr = b.delete(ctx, del) }()
		go func() { defer wg.Done(); addErr = b.create(ctx, add) }()
		wg.Wait()
		if err := errors.Join(delErr, addErr); err != nil {
			return err
		}
		b.lastAPI = time.Now()
		if err := b.waitAll(ctx, add, 5*time.Minute); err != nil {
			return err
		}
		b.report(fmt.Sprintf("churn -%d +%d at %d", churn, churn, have), add, t0)
		b.checkUntouched(before, del)
		have += churn
	}

	// Cold start: restart the controller with every Service assigned.
	before := b.snapshot()
	b.stopController()
	t0 := time.Now()
	if err := b.startController(); err != nil {
		return err
	}
	extra := []string{"cold-start-probe"}
	if err := b.create(ctx, extra); err != nil {
		return err
	}
	if err := b.waitAll(ctx, extra, 5*time.Minute); err != nil {
		return err
	}
	b.mu.Lock()
	coldIP := b.gotIP[extra[0]].Sub(t0)
	b.mu.Unlock()
	fmt.Printf("cold start with %d assigned: new Service got its IP %.2fs after the controller started\n", len(before), coldIP.Seconds())
	time.Sleep(2 * time.Second) // let a misbehaving controller show itself
	b.checkUntouched(before, nil)
	return b.checkDuplicates()
}

func names(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("svc-%05d", i))
	}
	return out
}

func (b *bench) applySetup(ctx context.Context, path string) error {
	scheme, err := k8s.NewScheme()
	if err != nil {
		return err
	}
	c, err := client.New(b.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if path == "" {
		return c.Create(ctx, &v1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: "bench"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"10.128.0.0/12"}},
		})
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		u := map[string]any{}
		if err := dec.Decode(&u); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(u) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: u}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("apply %s: %w", path, err)
		}
	}
}

func (b *bench) startController() error {
	args := make([]string, len(b.cmdline))
	for i, a := range b.cmdline {
		args[i] = strings.ReplaceAll(a, "{kubeconfig}", b.kubecfg)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+b.kubecfg)
	cmd.Stdout, cmd.Stderr = b.ctrlLog, b.ctrlLog
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start controller: %w", err)
	}
	b.ctrl = cmd
	return nil
}

func (b *bench) stopController() {
	if b.ctrl == nil {
		return
	}
	_ = b.ctrl.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.ctrl.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = b.ctrl.Process.Kill()
		<-done
	}
	b.ctrl = nil
}

func (b *bench) create(ctx context.Context, names []string) error {
	no := false
	return b.parallel(names, func(name string) error {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: corev1.ServiceSpec{
				Type:                          corev1.ServiceTypeLoadBalancer,
				AllocateLoadBalancerNodePorts: &no,
				Selector:                      map[string]string{"app": name},
				Ports:                         []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}
		b.mu.Lock()
		b.created[name] = time.Now()
		b.mu.Unlock()
		_, err := b.cs.CoreV1().Services("bench").Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
}

func (b *bench) delete(ctx context.Context, names []string) error {
	return b.parallel(names, func(name string) error {
		err := b.cs.CoreV1().Services("bench").Delete(ctx, name, metav1.DeleteOptions{})
		b.mu.Lock()
		delete(b.ips, name)
		b.mu.Unlock()
		return err
	})
}

func (b *bench) parallel(names []string, fn func(string) error) error {
	ch := make(chan string)
	errs := make(chan error, b.workers)
	var wg sync.WaitGroup
	for i := 0; i < b.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for n := range ch {
				if err := fn(n); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, n := range names {
		ch <- n
	}
	close(ch)
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	return errors.Join(all...)
}

// watch records, for every Service, when its IPs first appear and any later
// change of them.
func (b *bench) watch(ctx context.Context) {
	rv := ""
	for ctx.Err() == nil {
		w, err := b.cs.CoreV1().Services("bench").Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			rv = svc.ResourceVersion
			if ev.Type == watch.Deleted || ev.Type == watch.Bookmark {
				continue
			}
			var ips []string
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				ips = append(ips, ing.IP)
			}
			now := time.Now()
			cur := strings.Join(ips, ",")
			b.mu.Lock()
			if cur != "" {
				if _, seen := b.gotIP[svc.Name]; !seen {
					b.gotIP[svc.Name] = now
				}
			}
			if prev, ok := b.ips[svc.Name]; ok && prev != "" && prev != cur {
				b.changed = append(b.changed, fmt.Sprintf("%s: %s -> %s", svc.Name, prev, cur))
			}
			b.ips[svc.Name] = cur
			b.mu.Unlock()
		}
	}
}

func (b *bench) waitAll(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		b.mu.Lock()
		for _, n := range names {
			if _, ok := b.gotIP[n]; !ok {
				missing++
			}
		}
		b.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Services still without an IP after %v", missing, len(names), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *bench) report(phase string, names []string, t0 time.Time) {
	b.mu.Lock()
	lat := make([]time.Duration, 0, len(names))
	last := t0
	for _, n := range names {
		got := b.gotIP[n]
		lat = append(lat, got.Sub(b.created[n]))
		if got.After(last) {
			last = got
		}
	}
	b.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	cpu, rss := procStats(b.ctrl.Process.Pid)
	fmt.Printf("%-28s %9.2fs %9.2fs %8.0fms %8.0fms %9.1fs %7.0fMiB\n", phase, last.Sub(t0).Seconds(),
		max(0, last.Sub(b.lastAPI).Seconds()), ms(lat[len(lat)/2]), ms(lat[(len(lat)*99)/100]), cpu, rss)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (b *bench) snapshot() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.ips))
	for k, v := range b.ips {
		out[k] = v
	}
	return out
}

func (b *bench) checkUntouched(before map[string]string, except []string) {
	skip := map[string]bool{}
	for _, n := range except {
		skip[n] = true
	}
	after := b.snapshot()
	moved := 0
	for n, ip := range before {
		if skip[n] {
			continue
		}
		if after[n] != ip {
			moved++
			if moved <= 5 {
				fmt.Printf("  MOVED %s: %s -> %s\n", n, ip, after[n])
			}
		}
	}
	fmt.Printf("  untouched Services whose IP changed: %d of %d\n", moved, len(before)-len(except))
}

func (b *bench) checkDuplicates() error {
	seen := map[string]string{}
	dups := 0
	for n, ips := range b.snapshot() {
		for _, ip := range strings.Split(ips, ",") {
			if ip == "" {
				continue
			}
			if other, ok := seen[ip]; ok {
				dups++
				if dups <= 5 {
					fmt.Printf("  DUPLICATE %s held by %s and %s\n", ip, other, n)
				}
			}
			seen[ip] = n
		}
	}
	b.mu.Lock()
	changes := len(b.changed)
	b.mu.Unlock()
	fmt.Printf("duplicate IPs: %d; IP changes seen on any Service: %d\n", dups, changes)
	if dups > 0 {
		return fmt.Errorf("%d duplicate IPs", dups)
	}
	return nil
}

// procStats returns CPU-seconds used and peak RSS (MiB) of pid.
func procStats(pid int) (float64, float64) {
	var cpu, rss float64
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+2:])
			if len(f) > 12 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpu = (ut + st) / 100 // USER_HZ
			}
		}
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				kb, _ := strconv.ParseFloat(f[1], 64)
				rss = kb / 1024
			}
		}
	}
	return cpu, rss
}
