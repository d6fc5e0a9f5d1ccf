package kube

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/herald-lb/herald/api/v1beta1"
)

// offlineClient is a client for an API server that is never contacted.
func offlineClient(t *testing.T, mut func(*rest.Config)) *APIClient {
	t.Helper()
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	if mut != nil {
		mut(cfg)
	}
	c, err := NewClient(cfg, scheme)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewSchemeGroups(t *testing.T) {
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"": true, "discovery.k8s.io": true, "herald.dev": true}
	for gvk := range s.AllKnownTypes() {
		if !allowed[gvk.Group] {
			t.Errorf("scheme has %s, outside core, discovery.k8s.io and herald.dev", gvk)
		}
	}
	for _, obj := range []runtime.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}, &v1beta1.BGPSessionStatus{}} {
		if _, _, err := s.ObjectKinds(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
}

func TestClientFor(t *testing.T) {
	c := offlineClient(t, nil)
	for _, tc := range []struct {
		obj        Object
		list       runtime.Object
		gv         schema.GroupVersion
		resource   string
		namespaced bool
		path       string
	}{
		{&corev1.Service{}, &corev1.ServiceList{}, corev1.SchemeGroupVersion, "services", true, "/api/v1/namespaces/ns/services"},
		{&corev1.Node{}, &corev1.NodeList{}, corev1.SchemeGroupVersion, "nodes", false, "/api/v1/nodes"},
		{&corev1.Secret{}, &corev1.SecretList{}, corev1.SchemeGroupVersion, "secrets", true, "/api/v1/namespaces/ns/secrets"},
		{&corev1.ConfigMap{}, &corev1.ConfigMapList{}, corev1.SchemeGroupVersion, "configmaps", true, "/api/v1/namespaces/ns/configmaps"},
		{&corev1.Event{}, &corev1.EventList{}, corev1.SchemeGroupVersion, "events", true, "/api/v1/namespaces/ns/events"},
		{&discoveryv1.EndpointSlice{}, &discoveryv1.EndpointSliceList{}, discoveryv1.SchemeGroupVersion, "endpointslices", true, "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices"},
		{&v1beta1.IPAddressPool{}, &v1beta1.IPAddressPoolList{}, v1beta1.GroupVersion, "ipaddresspools", true, "/apis/herald.dev/v1beta1/namespaces/ns/ipaddresspools"},
		{&v1beta1.L2Advertisement{}, &v1beta1.L2AdvertisementList{}, v1beta1.GroupVersion, "l2advertisements", true, "/apis/herald.dev/v1beta1/namespaces/ns/l2advertisements"},
		{&v1beta1.BGPAdvertisement{}, &v1beta1.BGPAdvertisementList{}, v1beta1.GroupVersion, "bgpadvertisements", true, "/apis/herald.dev/v1beta1/namespaces/ns/bgpadvertisements"},
		{&v1beta1.BGPPeer{}, &v1beta1.BGPPeerList{}, v1beta1.GroupVersion, "bgppeers", true, "/apis/herald.dev/v1beta1/namespaces/ns/bgppeers"},
		{&v1beta1.Community{}, &v1beta1.CommunityList{}, v1beta1.GroupVersion, "communities", true, "/apis/herald.dev/v1beta1/namespaces/ns/communities"},
		{&v1beta1.ServiceL2Status{}, &v1beta1.ServiceL2StatusList{}, v1beta1.GroupVersion, "servicel2statuses", true, "/apis/herald.dev/v1beta1/namespaces/ns/servicel2statuses"},
		{&v1beta1.ServiceBGPStatus{}, &v1beta1.ServiceBGPStatusList{}, v1beta1.GroupVersion, "servicebgpstatuses", true, "/apis/herald.dev/v1beta1/namespaces/ns/servicebgpstatuses"},
		{&v1beta1.BGPSessionStatus{}, &v1beta1.BGPSessionStatusList{}, v1beta1.GroupVersion, "bgpsessionstatuses", true, "/apis/herald.dev/v1beta1/namespaces/ns/bgpsessionstatuses"},
	} {
		kind := reflect.TypeOf(tc.obj).Elem().Name()
		t.Run(kind, func(t *testing.T) {
			rc, r, err := c.clientFor(tc.obj, false)
			if err != nil {
				t.Fatal(err)
			}
			want := Resource{GroupVersionKind: tc.gv.WithKind(kind), Resource: tc.resource, Namespaced: tc.namespaced}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("resource (-want +got):\n%s", diff)
			}
			if got := rc.APIVersion(); got != tc.gv {
				t.Errorf("REST client for %s, want %s", got, tc.gv)
			}
			if got := rc.Get().NamespaceIfScoped("ns", r.Namespaced).Resource(r.Resource).URL().Path; got != tc.path {
				t.Errorf("path %s, want %s", got, tc.path)
			}
			_, lr, err := c.clientFor(tc.list, true)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if diff := cmp.Diff(want, lr); diff != "" {
				t.Errorf("list's resource (-want +got):\n%s", diff)
			}
			if _, _, err := c.clientFor(tc.obj, true); !errors.Is(err, ErrUnsupportedKind) {
				t.Errorf("an object taken for a list: %v, want ErrUnsupportedKind", err)
			}
		})
	}
}

// TestSharedRateLimiter checks that one rate limiter serves every API
// group, so that the configured QPS is the process's total.
func TestSharedRateLimiter(t *testing.T) {
	own := flowcontrol.NewTokenBucketRateLimiter(3, 4)
	for _, tc := range []struct {
		name    string
		mut     func(*rest.Config)
		wantQPS float32 // 0: no rate limiter
		same    flowcontrol.RateLimiter
	}{
		{"configured", func(c *rest.Config) { c.QPS, c.Burst = 7, 9 }, 7, nil},
		{"client-go defaults", nil, rest.DefaultQPS, nil},
		{"given limiter", func(c *rest.Config) { c.QPS, c.RateLimiter = 50, own }, 3, own},
		{"disabled", func(c *rest.Config) { c.QPS = -1 }, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := offlineClient(t, tc.mut)
			if len(c.clients) != 3 {
				t.Fatalf("%d REST clients, want 3 (core, discovery, herald)", len(c.clients))
			}
			var first flowcontrol.RateLimiter
			n := 0
			for gv, rc := range c.clients {
				rl := rc.GetRateLimiter()
				if tc.wantQPS == 0 {
					if rl != nil {
						t.Errorf("%s: rate limiter %v, want none", gv, rl)
					}
					continue
				}
				if rl == nil {
					t.Fatalf("%s: no rate limiter", gv)
				}
				if n == 0 {
					first = rl
				} else if rl != first {
					t.Errorf("%s has its own rate limiter", gv)
				}
				n++
				if rl.QPS() != tc.wantQPS {
					t.Errorf("%s: QPS %v, want %v", gv, rl.QPS(), tc.wantQPS)
				}
				if tc.same != nil && rl != tc.same {
					t.Errorf("%s: not the configured rate limiter", gv)
				}
			}
		})
	}
}

// TestContentTypes: Kubernetes' kinds are asked for as protobuf, Herald's
// as JSON (the API server has no protobuf for custom resources), whatever
// the rest.Config asks for.
func TestContentTypes(t *testing.T) {
	var mu sync.Mutex
	accept := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accept[r.URL.Path] = r.Header.Get("Accept")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	}))
	defer srv.Close()
	c := offlineClient(t, func(cfg *rest.Config) {
		cfg.Host = srv.URL
		cfg.ContentType = runtime.ContentTypeJSON
	})
	ctx := context.Background()
	for _, obj := range []Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}, &v1beta1.IPAddressPool{}} {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "x"}, obj); !apierrors.IsNotFound(err) {
			t.Fatalf("%T: %v, want NotFound", obj, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for path, want := range map[string]string{
		"/api/v1/namespaces/default/services/x":                         runtime.ContentTypeProtobuf,
		"/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/x": runtime.ContentTypeProtobuf,
		"/apis/herald.dev/v1beta1/namespaces/default/ipaddresspools/x":  runtime.ContentTypeJSON,
	} {
		if got, ok := accept[path]; !ok || !strings.HasPrefix(got, want) {
			t.Errorf("%s: Accept %q, want %s first (requests: %v)", path, got, want, accept)
		}
	}
	for group, want := range map[string]bool{"": true, "discovery.k8s.io": true, "apps": true, "herald.dev": false, "metallb.io": false} {
		if got := builtin(schema.GroupVersion{Group: group, Version: "v1"}); got != want {
			t.Errorf("builtin(%q) = %v, want %v", group, got, want)
		}
	}
}
