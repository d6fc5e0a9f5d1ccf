package kube_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/testenv"
)

func TestMain(m *testing.M) {
	stop := testenv.Start()
	code := m.Run()
	stop()
	os.Exit(code)
}

// fixture is what an integration test works with: the package's client
// under test, an independent controller-runtime client to set up and
// check the API server's state, and the scheme.
type fixture struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	api    *kube.APIClient
	cr     client.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.Require(t)
	scheme, err := kube.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	api, err := kube.NewClient(env.Config, scheme)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cfg: env.Config, scheme: scheme, api: api, cr: cr}
}

var nameSeq atomic.Int64

// uniqueName returns a DNS-label name unique in the test binary's run.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, nameSeq.Add(1))
}

// namespace creates a fresh namespace (envtest runs no namespace
// controller, so it is not deleted afterwards).
func (f *fixture) namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("kube-test")}}
	if err := f.cr.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func newService(ns, name string, lbls map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

func newNode(name string, lbls map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func newL2Status(ns, name, node string) *v1beta1.ServiceL2Status {
	return &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name, Labels: map[string]string{v1beta1.LabelNodeName: node},
	}}
}

// create creates objs through the independent client.
func (f *fixture) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := f.cr.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// names returns the sorted names of the items of list.
func names[T any, P interface {
	*T
	metav1.Object
}](items []T) []string {
	out := make([]string, 0, len(items))
	for i := range items {
		out = append(out, P(&items[i]).GetName())
	}
	slices.Sort(out)
	return out
}

// eventually polls cond until it holds or the deadline passes; then it
// fails with cond's last complaint.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-tick.C:
		}
	}
}

// request is a request a client sent.
type request struct {
	method, path string
	query        url.Values
}

func (r request) String() string { return r.method + " " + r.path + "?" + r.query.Encode() }

// requestLog records the requests a client sends.
type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.reqs = append(l.reqs, request{method: r.Method, path: r.URL.Path, query: r.URL.Query()})
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// to returns the recorded requests whose path ends with pathSuffix.
func (l *requestLog) to(pathSuffix string) []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []request
	for _, r := range l.reqs {
		if strings.HasSuffix(r.path, pathSuffix) {
			out = append(out, r)
		}
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
