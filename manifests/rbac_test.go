package manifests_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/controller/certs"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/pki"
	"github.com/herald-lb/herald/internal/testenv"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

const ns = v1beta1.Namespace

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testenv.Require(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func newClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenConfig returns a client configuration that authenticates as the
// ServiceAccount, with a token from the TokenRequest API: no client
// certificate, no admin rights.
func tokenConfig(t *testing.T, sa string) *rest.Config {
	t.Helper()
	env := testenv.Require(t)
	tr, err := clientset(t).CoreV1().ServiceAccounts(ns).CreateToken(ctx(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// eventually polls f until it returns "" or the deadline passes.
func eventually(t *testing.T, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

// TestRBAC installs herald.yaml for real, then runs the real controller
// with the herald-controller ServiceAccount's token and has it do its whole
// job (memberlist Secret, webhook certificate and caBundle, Lease,
// validation, addresses from CRD and ConfigMap pools, pool status,
// events); makes the speaker's API calls with the herald-speaker token;
// and checks what each must not be able to do.
func TestRBAC(t *testing.T) {
	k := newKubectl(t)
	k.must(nil, "apply", "-f", filepath.Join(root(), "herald.yaml"))
	admin := newClient(t, testenv.Require(t).Config)

	// The API server here cannot reach Services: point the webhook at the
	// controller this test runs.
	port := freeport.Port(t)
	var whc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := admin.Get(ctx(), client.ObjectKey{Name: certs.DefaultWebhookConfigName}, &whc); err != nil {
		t.Fatal(err)
	}
	for i := range whc.Webhooks {
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *whc.Webhooks[i].ClientConfig.Service.Path)
		whc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	if err := admin.Update(ctx(), &whc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(ctx(), &whc) })

	ctrlCfg := tokenConfig(t, "herald-controller")
	opts := controller.DefaultOptions()
	opts.MetricsAddr, opts.HealthAddr = "0", "0"
	opts.WebhookAddr = fmt.Sprintf("127.0.0.1:%d", port)
	opts.WebhookCertHosts = []string{"127.0.0.1"}
	// Leader election stays on (the Lease is part of the job), as does
	// the memberlist Secret.
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(runCtx, ctrlCfg, opts, testLogger()) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("controller (with its ServiceAccount's token) returned: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("controller did not stop")
			}
		})
	}
	t.Cleanup(stop)

	t.Run("controller", func(t *testing.T) {
		controllerDoesItsJob(t, admin)
	})
	t.Run("controller denied", func(t *testing.T) {
		c := newClient(t, ctrlCfg)
		denied(t, "list Secrets", c.List(ctx(), &corev1.SecretList{}, client.InNamespace(ns)))
		denied(t, "get another Secret", c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "bgp-password"}, &corev1.Secret{}))
		denied(t, "get a Secret elsewhere", c.Get(ctx(), client.ObjectKey{Namespace: "kube-system", Name: "x"}, &corev1.Secret{}))
		denied(t, "list Pods", c.List(ctx(), &corev1.PodList{}))
		denied(t, "delete a Service", c.Delete(ctx(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "rbac-test", Name: "web"}}))
		denied(t, "get another webhook configuration", c.Get(ctx(), client.ObjectKey{Name: "someone-else"}, &admissionregistrationv1.ValidatingWebhookConfiguration{}))
		denied(t, "create a pool", c.Create(ctx(), &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.9.9.0/24"}}}))
		denied(t, "get a ConfigMap other than herald-config", c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "kube-root-ca.crt"}, &corev1.ConfigMap{}))
		cannot(t, "system:serviceaccount:herald-system:herald-controller", []authorizationv1.ResourceAttributes{
			{Verb: "update", Resource: "services", Namespace: "rbac-test"},
			{Verb: "watch", Resource: "secrets", Namespace: ns},
			{Verb: "update", Resource: "secrets", Namespace: ns, Name: "herald-memberlist"},
			{Verb: "create", Resource: "endpointslices", Group: "discovery.k8s.io", Namespace: "rbac-test"},
			{Verb: "update", Resource: "nodes"},
			{Verb: "update", Resource: "leases", Group: "coordination.k8s.io", Namespace: "kube-system"},
		})
	})
	stop()

	t.Run("speaker", func(t *testing.T) {
		speakerCalls(t, admin, tokenConfig(t, "herald-speaker"))
	})
}

func controllerDoesItsJob(t *testing.T, admin client.Client) {
	eventually(t, "memberlist Secret", func() string {
		var s corev1.Secret
		if err := admin.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "herald-memberlist"}, &s); err != nil {
			return err.Error()
		}
		if len(s.Data[controller.MemberlistSecretKey]) == 0 {
			return "no key"
		}
		return ""
	})
	eventually(t, "webhook certificate and caBundle", func() string {
		var s corev1.Secret
		if err := admin.Get(ctx(), client.ObjectKey{Namespace: ns, Name: certs.DefaultSecretName}, &s); err != nil {
			return err.Error()
		}
		var whc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := admin.Get(ctx(), client.ObjectKey{Name: certs.DefaultWebhookConfigName}, &whc); err != nil {
			return err.Error()
		}
		if !pki.BundleContains(whc.Webhooks[0].ClientConfig.CABundle, s.Data[certs.KeyCA]) {
			return "the caBundle does not hold the Secret's CA"
		}
		return ""
	})
	eventually(t, "Lease", func() string {
		var l coordinationv1.Lease
		if err := admin.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "herald-controller"}, &l); err != nil {
			return err.Error()
		}
		return ""
	})
	// The webhook reads the configuration with the controller's rights.
	eventually(t, "webhook rejects an invalid pool", func() string {
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"x"}}}
		err := admin.Create(ctx(), p)
		if err == nil {
			_ = admin.Delete(ctx(), p)
			return "accepted"
		}
		if !strings.Contains(err.Error(), "denied the request") {
			return err.Error()
		}
		return ""
	})

	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-test", Labels: map[string]string{"team": "a"}}},
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rbac"}, Spec: v1beta1.IPAddressPoolSpec{
			Addresses:         []string{"10.50.0.0/29"},
			ServiceAllocation: &v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "a"}}}},
		}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1beta1.LegacyConfigMapName}, Data: map[string]string{
			v1beta1.LegacyConfigMapKey: "address-pools:\n- name: legacy\n  protocol: layer2\n  auto-assign: false\n  addresses: [10.51.0.0/29]\n",
		}},
		lbService("web", nil),
		lbService("old", map[string]string{"metallb.universe.tf/address-pool": "legacy"}),
	} {
		if err := admin.Create(ctx(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	for name, prefix := range map[string]string{"web": "10.50.0.", "old": "10.51.0."} {
		eventually(t, "address for "+name, func() string {
			var s corev1.Service
			if err := admin.Get(ctx(), client.ObjectKey{Namespace: "rbac-test", Name: name}, &s); err != nil {
				return err.Error()
			}
			if len(s.Status.LoadBalancer.Ingress) != 1 || !strings.HasPrefix(s.Status.LoadBalancer.Ingress[0].IP, prefix) {
				return fmt.Sprintf("ingress %v", s.Status.LoadBalancer.Ingress)
			}
			if s.Annotations[v1beta1.Annotation(v1beta1.AnnotationAllocatedFromPool)] == "" {
				return "no pool annotation"
			}
			return ""
		})
	}
	eventually(t, "pool status", func() string {
		var p v1beta1.IPAddressPool
		if err := admin.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "rbac"}, &p); err != nil {
			return err.Error()
		}
		if p.Status.AssignedIPv4 != 1 || len(p.Status.Conditions) == 0 {
			return fmt.Sprintf("status %+v", p.Status)
		}
		return ""
	})
	eventually(t, "IPAllocated event", func() string {
		var evs corev1.EventList
		if err := admin.List(ctx(), &evs, client.InNamespace("rbac-test")); err != nil {
			return err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == "IPAllocated" && e.InvolvedObject.Name == "web" {
				return ""
			}
		}
		return fmt.Sprintf("%d events, none IPAllocated for web", len(evs.Items))
	})
}

func lbService(name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "rbac-test", Name: name, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
			Selector:                      map[string]string{"app": name},
			AllocateLoadBalancerNodePorts: ptr.To(false),
		},
	}
}

// speakerCalls makes, with the speaker's token, the calls the speaker
// makes (its caches' lists and watches, its Secret reads, its status
// objects and events) and some it must not.
func speakerCalls(t *testing.T, admin client.Client, cfg *rest.Config) {
	c := newClient(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("speaker cannot %s: %v", what, err)
		}
	}
	in := client.InNamespace(ns)
	ok("list Services", c.List(ctx(), &corev1.ServiceList{}))
	ok("list EndpointSlices", c.List(ctx(), &discoveryv1.EndpointSliceList{}))
	ok("list Nodes", c.List(ctx(), &corev1.NodeList{}))
	for _, l := range []client.ObjectList{&v1beta1.IPAddressPoolList{}, &v1beta1.L2AdvertisementList{}, &v1beta1.BGPAdvertisementList{}, &v1beta1.BGPPeerList{}, &v1beta1.CommunityList{}, &v1beta1.ServiceL2StatusList{}, &v1beta1.ServiceBGPStatusList{}, &v1beta1.BGPSessionStatusList{}} {
		ok(fmt.Sprintf("list %T", l), c.List(ctx(), l, in))
	}
	byName := metav1.ListOptions{FieldSelector: "metadata.name=" + v1beta1.LegacyConfigMapName}
	_, err = cs.CoreV1().ConfigMaps(ns).List(ctx(), byName)
	ok("list the herald-config ConfigMap (by field selector, as its cache does)", err)
	for what, watch := range map[string]func(context.Context) error{
		"watch Services": func(wc context.Context) error {
			w, err := cs.CoreV1().Services("").Watch(wc, metav1.ListOptions{})
			stopWatch(w, err)
			return err
		},
		"watch EndpointSlices": func(wc context.Context) error {
			w, err := cs.DiscoveryV1().EndpointSlices("").Watch(wc, metav1.ListOptions{})
			stopWatch(w, err)
			return err
		},
		"watch Nodes": func(wc context.Context) error {
			w, err := cs.CoreV1().Nodes().Watch(wc, metav1.ListOptions{})
			stopWatch(w, err)
			return err
		},
		"watch herald-config": func(wc context.Context) error {
			w, err := cs.CoreV1().ConfigMaps(ns).Watch(wc, byName)
			stopWatch(w, err)
			return err
		},
		"watch Secrets in herald-system": func(wc context.Context) error {
			w, err := cs.CoreV1().Secrets(ns).Watch(wc, metav1.ListOptions{})
			stopWatch(w, err)
			return err
		},
	} {
		wc, cancel := context.WithTimeout(ctx(), 5*time.Second)
		ok(what, watch(wc))
		cancel()
	}
	var s corev1.Secret
	ok("get the memberlist Secret", c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "herald-memberlist"}, &s))

	st := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "node-1-rbac", Labels: map[string]string{v1beta1.LabelNodeName: "node-1"}}}
	ok("create a ServiceL2Status", c.Create(ctx(), st))
	ok("patch a ServiceL2Status's status (a merge patch, as the speaker writes it)", c.Status().Patch(ctx(), st, client.RawPatch(types.MergePatchType,
		[]byte(`{"status":{"node":"node-1","serviceName":"web","serviceNamespace":"rbac-test","ips":["10.50.0.1"]}}`))))
	ok("delete a ServiceL2Status", c.Delete(ctx(), st))
	var svc corev1.Service
	if err := admin.Get(ctx(), client.ObjectKey{Namespace: "rbac-test", Name: "web"}, &svc); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Events("rbac-test").Create(ctx(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "web-", Namespace: "rbac-test"},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: "rbac-test", Name: "web", UID: svc.UID, APIVersion: "v1"},
		Reason:         "nodeAssigned", Message: "announcing from node-1", Type: corev1.EventTypeNormal, Source: corev1.EventSource{Component: "herald-speaker"},
	}, metav1.CreateOptions{})
	ok("create an Event", err)

	// What the speaker must not do: change Services, read other Secrets
	// and ConfigMaps, change the configuration.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"externalTrafficPolicy":"Local"}}`))
	denied(t, "patch a Service", c.Patch(ctx(), svc.DeepCopy(), patch))
	denied(t, "update a Service", c.Update(ctx(), svc.DeepCopy()))
	denied(t, "patch a Service's status", c.Status().Patch(ctx(), svc.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"status":{"loadBalancer":{}}}`))))
	denied(t, "delete a Service", c.Delete(ctx(), svc.DeepCopy()))
	denied(t, "get a Secret elsewhere", c.Get(ctx(), client.ObjectKey{Namespace: "kube-system", Name: "x"}, &corev1.Secret{}))
	denied(t, "list Secrets everywhere", c.List(ctx(), &corev1.SecretList{}))
	denied(t, "get another ConfigMap", c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "kube-root-ca.crt"}, &corev1.ConfigMap{}))
	denied(t, "create a pool", c.Create(ctx(), &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.9.9.0/24"}}}))
	var pool v1beta1.IPAddressPool
	if err := admin.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "rbac"}, &pool); err != nil {
		t.Fatal(err)
	}
	denied(t, "patch a pool's status", c.Status().Patch(ctx(), &pool, client.RawPatch(types.MergePatchType, []byte(`{"status":{"assignedIPv4":7}}`))))
	denied(t, "list Namespaces", c.List(ctx(), &corev1.NamespaceList{}))
	denied(t, "get the Lease", c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "herald-controller"}, &coordinationv1.Lease{}))
	cannot(t, "system:serviceaccount:herald-system:herald-speaker", []authorizationv1.ResourceAttributes{
		{Verb: "update", Resource: "services", Subresource: "status", Namespace: "rbac-test"},
		{Verb: "create", Resource: "services", Namespace: "rbac-test"},
		{Verb: "update", Resource: "nodes"},
		{Verb: "update", Resource: "validatingwebhookconfigurations", Group: "admissionregistration.k8s.io", Name: certs.DefaultWebhookConfigName},
		{Verb: "create", Resource: "servicel2statuses", Group: "herald.dev", Namespace: "rbac-test"},
		{Verb: "update", Resource: "servicel2statuses", Group: "herald.dev", Namespace: ns},
		{Verb: "update", Resource: "bgpsessionstatuses", Subresource: "status", Group: "herald.dev", Namespace: ns},
	})
}

func stopWatch(w interface{ Stop() }, err error) {
	if err == nil {
		w.Stop()
	}
}

// denied fails unless err is the API server's Forbidden.
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: %v, want Forbidden", what, err)
	}
}

// cannot checks with SubjectAccessReviews that user may do none of attrs.
func cannot(t *testing.T, user string, attrs []authorizationv1.ResourceAttributes) {
	t.Helper()
	cs := clientset(t)
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	for _, a := range attrs {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx(), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups, ResourceAttributes: &a,
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			t.Errorf("%s may %s %s/%s %s in %q", user, a.Verb, a.Resource, a.Subresource, a.Name, a.Namespace)
		}
	}
}
