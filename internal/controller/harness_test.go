package controller_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/testenv"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(testLogger())
	stop := testenv.Start()
	code := m.Run()
	stop()
	os.Exit(code)
}

// fixture is one test's view of the shared API server.
type fixture struct {
	t  *testing.T
	c  client.Client
	ns string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.Require(t)
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, ns: strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	if len(f.ns) > 50 {
		f.ns = f.ns[:50]
	}
	f.ensureNamespace(v1beta1.Namespace, nil)
	f.ensureNamespace(f.ns, nil)
	t.Cleanup(f.cleanConfig)
	return f
}

func (f *fixture) ctx() context.Context { return context.Background() }

func (f *fixture) ensureNamespace(name string, labels map[string]string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := f.c.Create(f.ctx(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		f.t.Fatalf("create namespace %s: %v", name, err)
	}
}

// cleanConfig deletes every configuration object and the ConfigMap, so the
// next test starts from nothing (Services stay, in their own namespace).
func (f *fixture) cleanConfig() {
	ctx := f.ctx()
	in := client.InNamespace(v1beta1.Namespace)
	for _, obj := range []client.Object{&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{}, &v1beta1.BGPPeer{}, &v1beta1.Community{}} {
		_ = f.c.DeleteAllOf(ctx, obj, in)
	}
	_ = f.c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: v1beta1.LegacyConfigMapName}})
	var svcs corev1.ServiceList
	if err := f.c.List(ctx, &svcs, client.InNamespace(f.ns)); err == nil {
		for i := range svcs.Items {
			_ = f.c.Delete(ctx, &svcs.Items[i])
		}
	}
}

// startController runs the real controller in-process until the test ends
// or stop is called.
func (f *fixture) startController(mut ...func(*controller.Options)) (stop func()) {
	f.t.Helper()
	env := testenv.Require(f.t)
	opts := controller.DefaultOptions()
	opts.LeaderElection = false
	opts.MetricsAddr, opts.HealthAddr = "0", "0"
	for _, m := range mut {
		m(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, env.Config, opts, testLogger()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					f.t.Errorf("controller returned: %v", err)
				}
			case <-time.After(30 * time.Second):
				f.t.Errorf("controller did not stop within 30s")
			}
		})
	}
	f.t.Cleanup(stop)
	return stop
}

func testLogger() logr.Logger {
	if os.Getenv("HERALD_TEST_LOG") == "" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1})
}

func (f *fixture) pool(name string, addrs []string, mut ...func(*v1beta1.IPAddressPool)) *v1beta1.IPAddressPool {
	f.t.Helper()
	p := &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: name},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
	for _, m := range mut {
		m(p)
	}
	if err := f.c.Create(f.ctx(), p); err != nil {
		f.t.Fatalf("create pool %s: %v", name, err)
	}
	return p
}

type svcOpt func(*corev1.Service)

func withAnnotation(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func withPorts(ports ...int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)})
		}
	}
}

func (f *fixture) service(name string, opts ...svcOpt) *corev1.Service {
	f.t.Helper()
	no := false
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
			Selector:                      map[string]string{"app": name},
			AllocateLoadBalancerNodePorts: &no,
		},
	}
	for _, o := range opts {
		o(s)
	}
	if err := f.c.Create(f.ctx(), s); err != nil {
		f.t.Fatalf("create service %s: %v", name, err)
	}
	return s
}

func (f *fixture) get(name string) *corev1.Service {
	f.t.Helper()
	var s corev1.Service
	if err := f.c.Get(f.ctx(), client.ObjectKey{Namespace: f.ns, Name: name}, &s); err != nil {
		f.t.Fatalf("get service %s: %v", name, err)
	}
	return &s
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, ing := range s.Status.LoadBalancer.Ingress {
		out = append(out, ing.IP)
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func (f *fixture) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const waitFor = 20 * time.Second

// waitIPs waits until the Service shows exactly want (any order when want
// is nil means "some IPs"), and returns what it shows.
func (f *fixture) waitIPs(name string, want ...string) []string {
	f.t.Helper()
	var got []string
	f.eventually(fmt.Sprintf("service %s to show IPs %v", name, want), waitFor, func() (bool, string) {
		got = ingressIPs(f.get(name))
		if len(want) == 0 {
			return len(got) > 0, fmt.Sprint(got)
		}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
	return got
}

// waitNoIPs waits until the Service shows no address.
func (f *fixture) waitNoIPs(name string) {
	f.t.Helper()
	f.eventually("service "+name+" to show no IPs", waitFor, func() (bool, string) {
		got := ingressIPs(f.get(name))
		return len(got) == 0, fmt.Sprint(got)
	})
}

// stayNoIPs checks the Service gets no address for a while.
func (f *fixture) stayNoIPs(name string, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := ingressIPs(f.get(name)); len(got) > 0 {
			f.t.Fatalf("service %s got IPs %v, want none", name, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitEvent waits for an event on the object with the reason and a message
// containing substr, and returns the message.
func (f *fixture) waitEvent(ns, name, reason, substr string) string {
	f.t.Helper()
	var msg string
	f.eventually(fmt.Sprintf("event %s %q on %s/%s", reason, substr, ns, name), waitFor, func() (bool, string) {
		var evs corev1.EventList
		if err := f.c.List(f.ctx(), &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name != name {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				msg = e.Message
				return true, ""
			}
		}
		sort.Strings(seen)
		return false, strings.Join(seen, " | ")
	})
	return msg
}

func (f *fixture) update(obj client.Object, mut func()) {
	f.t.Helper()
	for i := 0; ; i++ {
		if err := f.c.Get(f.ctx(), client.ObjectKeyFromObject(obj), obj); err != nil {
			f.t.Fatalf("get %s: %v", obj.GetName(), err)
		}
		mut()
		err := f.c.Update(f.ctx(), obj)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || i > 5 {
			f.t.Fatalf("update %s: %v", obj.GetName(), err)
		}
	}
}

func poolCondition(p *v1beta1.IPAddressPool) *metav1.Condition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1beta1.ConditionValid {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// annotationWriters lists the subresource ("" for the object itself) of
// every managedFields entry that owns annotation key of svc.
func annotationWriters(svc *corev1.Service, key string) []string {
	var out []string
	for _, m := range svc.ManagedFields {
		if m.FieldsV1 != nil && strings.Contains(string(m.FieldsV1.Raw), `"f:`+key+`"`) {
			out = append(out, m.Subresource)
		}
	}
	return out
}

// waitPoolAnnotation waits for the ip-allocated-from-pool annotation (the
// controller writes it with the status).
func (f *fixture) waitPoolAnnotation(name, pool string) {
	f.t.Helper()
	f.eventually("service "+name+" annotated with pool "+pool, waitFor, func() (bool, string) {
		got := f.get(name).Annotations["herald.dev/ip-allocated-from-pool"]
		return got == pool, got
	})
}
