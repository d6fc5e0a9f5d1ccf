package webhook_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/testenv"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

const ns = v1beta1.Namespace

func TestMain(m *testing.M) {
	ctrllog.SetLogger(testLogger())
	stop := testenv.Start()
	code := m.Run()
	stop()
	os.Exit(code)
}

func testLogger() logr.Logger {
	if os.Getenv("HERALD_TEST_LOG") == "" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1})
}

func ctx() context.Context { return context.Background() }

func adminClient(t *testing.T) client.Client {
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
	for _, name := range []string{ns, "elsewhere"} {
		if err := c.Create(ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	return c
}

// startController runs the real controller with its webhook on a free
// port of 127.0.0.1 until the test ends or stop is called.
func startController(t *testing.T, cfg *rest.Config, port int, mut ...func(*controller.Options)) (stop func()) {
	t.Helper()
	opts := controller.DefaultOptions()
	opts.LeaderElection = false
	opts.MetricsAddr, opts.HealthAddr = "0", "0"
	opts.MemberlistSecret = ""
	opts.WebhookAddr = fmt.Sprintf("127.0.0.1:%d", port)
	opts.WebhookCertHosts = []string{"127.0.0.1"}
	for _, m := range mut {
		m(&opts)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(c, cfg, opts, testLogger()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("controller returned: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("controller did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// WebhookConfig reads the generated ValidatingWebhookConfiguration from
// manifests/ and points it at https://127.0.0.1:port instead of the
// Service (the test API server cannot reach Services).
func WebhookConfig(t *testing.T, port int) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "manifests", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("manifests/webhook/manifests.yaml: %v", err)
	}
	for i := range cfg.Webhooks {
		svc := cfg.Webhooks[i].ClientConfig.Service
		if svc == nil || svc.Path == nil {
			t.Fatalf("webhook %s has no Service path", cfg.Webhooks[i].Name)
		}
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *svc.Path)
		cfg.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	return &cfg
}

// register creates (or replaces) the webhook configuration pointing at port.
func register(t *testing.T, c client.Client, port int) {
	t.Helper()
	cfg := WebhookConfig(t, port)
	var old admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(ctx(), client.ObjectKeyFromObject(cfg), &old); err == nil {
		// Keep the caBundle the controller may have published already.
		for i := range cfg.Webhooks {
			if i < len(old.Webhooks) {
				cfg.Webhooks[i].ClientConfig.CABundle = old.Webhooks[i].ClientConfig.CABundle
			}
		}
		cfg.ResourceVersion = old.ResourceVersion
		if err := c.Update(ctx(), cfg); err != nil {
			t.Fatalf("update webhook configuration: %v", err)
		}
	} else if err := c.Create(ctx(), cfg); err != nil {
		t.Fatalf("create webhook configuration: %v", err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx(), cfg) })
}

const denied = `admission webhook "config.herald.dev" denied the request: `

// waitRejecting waits until the webhook answers: with failurePolicy
// Ignore, an unreachable webhook lets anything through.
func waitRejecting(t *testing.T, c client.Client) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		probe := pool("webhook-probe", "not-an-address")
		err := c.Create(ctx(), probe)
		if err != nil && strings.Contains(err.Error(), denied) {
			return
		}
		if err == nil {
			_ = c.Delete(ctx(), probe)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook does not reject an invalid pool within 60s (last: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clean deletes the configuration, advertisements first so that no
// deletion leaves a dangling reference the webhook would refuse.
func clean(t *testing.T, c client.Client) {
	t.Helper()
	for _, nsName := range []string{ns, "elsewhere"} {
		in := client.InNamespace(nsName)
		for _, obj := range []client.Object{&v1beta1.BGPAdvertisement{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPPeer{}, &v1beta1.Community{}, &v1beta1.BFDProfile{}, &v1beta1.IPAddressPool{}} {
			if err := c.DeleteAllOf(ctx(), obj, in); err != nil {
				t.Fatalf("clean %T: %v", obj, err)
			}
		}
	}
	_ = c.Delete(ctx(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1beta1.LegacyConfigMapName}})
}

func om(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

func bfdProfile(name string, ms uint32) *v1beta1.BFDProfile {
	return &v1beta1.BFDProfile{ObjectMeta: om(name), Spec: v1beta1.BFDProfileSpec{TransmitInterval: &ms, ReceiveInterval: &ms}}
}

func pool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: om(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func bgpAdv(name string, mod func(*v1beta1.BGPAdvertisementSpec)) *v1beta1.BGPAdvertisement {
	a := &v1beta1.BGPAdvertisement{ObjectMeta: om(name)}
	mod(&a.Spec)
	return a
}

func peer(name string, myASN, peerASN uint32, mod func(*v1beta1.BGPPeerSpec)) *v1beta1.BGPPeer {
	p := &v1beta1.BGPPeer{ObjectMeta: om(name), Spec: v1beta1.BGPPeerSpec{MyASN: myASN, PeerASN: peerASN, PeerAddress: "10.1.0.1"}}
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

func community(name string, kv ...string) *v1beta1.Community {
	c := &v1beta1.Community{ObjectMeta: om(name)}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: kv[i], Value: kv[i+1]})
	}
	return c
}

func unstructuredPeer(name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(v1beta1.GroupVersion.String())
	u.SetKind("BGPPeer")
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// TestRejections tries every kind of configuration error the webhook must
// refuse, against the real API server, and checks the message names the
// object and field.
func TestRejections(t *testing.T) {
	env := testenv.Require(t)
	c := adminClient(t)
	port := freeport.Port(t)
	startController(t, env.Config, port)
	register(t, c, port)
	waitRejecting(t, c)

	legacy := &corev1.ConfigMap{ObjectMeta: om(v1beta1.LegacyConfigMapName), Data: map[string]string{
		v1beta1.LegacyConfigMapKey: "address-pools:\n- name: gold\n  protocol: layer2\n  addresses: [10.20.0.0/24]\n",
	}}
	inElsewhere := pool("foreign", "10.30.0.0/24")
	inElsewhere.Namespace = "elsewhere"
	agg16 := int32(16)

	type step struct {
		obj    client.Object
		delete bool
	}
	tests := []struct {
		name  string
		setup []client.Object
		do    step
		// want are substrings of the error; webhook rejections start with
		// the webhook's name, schema rejections name the field.
		want []string
	}{
		{"malformed CIDR", nil, step{obj: pool("bad-cidr", "10.0.0.0/33")}, []string{
			denied + `IPAddressPool "bad-cidr": spec.addresses[0]: "10.0.0.0/33" is neither a CIDR nor a first-last range`}},
		{"malformed range", nil, step{obj: pool("bad-range", "10.0.0.9-10.0.0.1")}, []string{
			denied + `IPAddressPool "bad-range": spec.addresses[0]: range "10.0.0.9-10.0.0.1": 10.0.0.9 is after 10.0.0.1`}},
		{"overlapping pools", []client.Object{pool("a", "10.0.0.0/24")}, step{obj: pool("b", "10.0.0.128/25")}, []string{
			denied, `IPAddressPool "a": spec.addresses[0]: "10.0.0.0/24" overlaps "10.0.0.128/25" of pool "b"`,
			`IPAddressPool "b": spec.addresses[0]: "10.0.0.128/25" overlaps "10.0.0.0/24" of pool "a"`}},
		{"name also in the ConfigMap", []client.Object{legacy}, step{obj: pool("gold", "10.0.1.0/24")}, []string{
			denied + `IPAddressPool "gold": metadata.name: defined both as an IPAddressPool and in ConfigMap herald-system/herald-config`}},
		{"duplicate community alias", []client.Object{community("x", "gold", "65000:1")}, step{obj: community("y", "gold", "65000:2")}, []string{
			denied + `Community "y": spec.communities[0].name: alias "gold" is already defined in Community "x"`}},
		{"invalid selector", nil, step{obj: &v1beta1.L2Advertisement{ObjectMeta: om("bad-selector"), Spec: v1beta1.L2AdvertisementSpec{
			NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: "Near"}}}}}}}, []string{
			denied + `L2Advertisement "bad-selector": spec.nodeSelectors[0].matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator`}},
		{"aggregationLength shorter than the pool's prefix", []client.Object{pool("a", "10.0.0.0/24")}, step{obj: bgpAdv("agg", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = &agg16 })}, []string{
			denied + `BGPAdvertisement "agg": spec.aggregationLength: aggregationLength 16 is shorter than pool "a" prefix 10.0.0.0/24`}},
		{"localPref on eBGP", []client.Object{peer("r1", 64500, 64501, nil)}, step{obj: bgpAdv("pref", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 100; s.Peers = []string{"r1"} })}, []string{
			denied + `BGPAdvertisement "pref": spec.localPref: localPref is only for iBGP peers, but spec.peers[0] "r1" is eBGP (myASN 64500, peerASN 64501)`}},
		{"a new eBGP peer under a localPref advertisement", []client.Object{bgpAdv("pref", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 100; s.Peers = []string{"r1"} })}, step{obj: peer("r1", 64500, 64501, nil)}, []string{
			denied + `BGPAdvertisement "pref": spec.localPref: localPref is only for iBGP peers`}},
		{"conflicting localPref", []client.Object{pool("a", "10.0.0.0/24"), bgpAdv("x", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 100 })}, step{obj: bgpAdv("y", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 200 })}, []string{
			denied + `BGPAdvertisement "y": spec.localPref: conflicts with BGPAdvertisement "x" on pool "a"`, `but with localPref 200 here and 100 there`}},
		{"conflicting communities", []client.Object{pool("a", "10.0.0.0/24"), bgpAdv("x", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"65000:1"} })}, step{obj: bgpAdv("y", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"65000:2"} })}, []string{
			denied + `BGPAdvertisement "y": spec.communities: conflicts with BGPAdvertisement "x" on pool "a"`, `but with communities [65000:2] here and [65000:1] there`}},
		{"bad community in an advertisement", nil, step{obj: bgpAdv("bad-comm", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"65000:99999"} })}, []string{
			denied + `BGPAdvertisement "bad-comm": spec.communities[0]: "65000:99999" is not a community: both parts must be numbers from 0 to 65535`}},
		{"bad community in a Community", nil, step{obj: community("bad-value", "x", "1:2:3")}, []string{
			denied + `Community "bad-value": spec.communities[0].value: "1:2:3" is not a community ("65000:100" or "large:1:2:3")`}},
		{"BGPPeer without myASN", nil, step{obj: unstructuredPeer("no-asn", map[string]any{"peerASN": int64(64500), "peerAddress": "10.1.0.1"})}, []string{
			`spec.myASN: Required value`}},
		{"BGPPeer without peerAddress", nil, step{obj: unstructuredPeer("no-addr", map[string]any{"myASN": int64(64500), "peerASN": int64(64500)})}, []string{
			`spec.peerAddress: Required value`}},
		{"BGPPeer without peerASN or dynamicASN", nil, step{obj: peer("no-peer-asn", 64500, 0, nil)}, []string{
			denied + `BGPPeer "no-peer-asn": spec.peerASN: required (non-zero) unless dynamicASN is set`}},
		{"dynamicASN and peerASN", nil, step{obj: peer("both-asns", 64500, 64501, func(s *v1beta1.BGPPeerSpec) { s.DynamicASN = v1beta1.DynamicASNExternal })}, []string{
			denied + `BGPPeer "both-asns": spec.dynamicASN: set only one of peerASN and dynamicASN`}},
		{"dynamicASN neither internal nor external", nil, step{obj: unstructuredPeer("any-asn", map[string]any{"myASN": int64(64500), "dynamicASN": "any", "peerAddress": "10.1.0.1"})}, []string{
			`spec.dynamicASN: Unsupported value: "any"`}},
		{"deleting a BFDProfile in use", []client.Object{bfdProfile("fast", 100), peer("uses-bfd", 64500, 64501, func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" })}, step{obj: bfdProfile("fast", 100), delete: true}, []string{
			denied + `BGPPeer "uses-bfd": spec.bfdProfile: BFDProfile "fast" does not exist`}},
		{"BFD interval too short", nil, step{obj: bfdProfile("too-fast", 5)}, []string{
			`spec.transmitInterval: Invalid value: 5: spec.transmitInterval in body should be greater than or equal to 10`}},
		{"holdTime under 3s", nil, step{obj: peer("short-hold", 64500, 64500, func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(2 * time.Second) })}, []string{
			denied + `BGPPeer "short-hold": spec.holdTime: 2s is neither 0 nor between 3s and 65535s`}},
		{"keepalive not under holdTime", nil, step{obj: peer("keepalive", 64500, 64500, func(s *v1beta1.BGPPeerSpec) {
			s.HoldTime, s.KeepaliveTime = dur(9*time.Second), dur(9*time.Second)
		})}, []string{
			denied + `BGPPeer "keepalive": spec.keepaliveTime: 9s is not less than holdTime 9s`}},
		{"password and passwordSecret", nil, step{obj: peer("two-passwords", 64500, 64500, func(s *v1beta1.BGPPeerSpec) {
			s.Password, s.PasswordSecret = "secret", &v1beta1.SecretReference{Name: "bgp-password"}
		})}, []string{
			denied + `BGPPeer "two-passwords": spec.passwordSecret: set only one of password and passwordSecret`}},
		{"ebgpMultiHop on iBGP", nil, step{obj: peer("multihop", 64500, 64500, func(s *v1beta1.BGPPeerSpec) { s.EBGPMultiHop = true })}, []string{
			denied + `BGPPeer "multihop": spec.ebgpMultiHop: ebgpMultiHop is for eBGP peers; myASN equals peerASN`}},
		{"outside herald-system", nil, step{obj: inElsewhere}, []string{
			denied + `IPAddressPool "foreign": metadata.namespace: "elsewhere" is not herald-system; objects must live in herald-system`}},
		{"deleting a community in use", []client.Object{community("c", "gold", "65000:1"), bgpAdv("uses", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"gold"} })}, step{obj: community("c"), delete: true}, []string{
			denied + `BGPAdvertisement "uses": spec.communities[0]: "gold" is neither a community value nor an alias defined in a Community object`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean(t, c)
			for _, obj := range tt.setup {
				if err := c.Create(ctx(), obj); err != nil {
					t.Fatalf("set up %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
				}
			}
			var err error
			if tt.do.delete {
				err = c.Delete(ctx(), tt.do.obj)
			} else {
				err = c.Create(ctx(), tt.do.obj)
			}
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.HasPrefix(tt.want[0], denied) && !apierrors.IsInvalid(err) {
				t.Errorf("reason %q, want Invalid (422)", apierrors.ReasonForError(err))
			}
		})
	}
	clean(t, c)
}

// TestValidChangesPass creates, updates and deletes a valid configuration
// of every kind through the webhook.
func TestValidChangesPass(t *testing.T) {
	env := testenv.Require(t)
	c := adminClient(t)
	port := freeport.Port(t)
	startController(t, env.Config, port)
	register(t, c, port)
	waitRejecting(t, c)
	clean(t, c)
	t.Cleanup(func() { clean(t, c) })

	agg24 := int32(24)
	// Objects may come in any order: the advertisement before the
	// Community it names, the peer before its BFDProfile (accepted with a
	// warning; the controller keeps the last good configuration until the
	// named object is there).
	objs := []client.Object{
		pool("a", "10.0.0.0/24", "fd00:10::/120"),
		pool("b", "10.0.1.0-10.0.1.9"),
		&v1beta1.L2Advertisement{ObjectMeta: om("l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"b"}, Interfaces: []string{"eth0"}}},
		peer("ibgp", 64500, 64500, func(s *v1beta1.BGPPeerSpec) { s.HoldTime, s.KeepaliveTime = dur(9*time.Second), dur(3*time.Second) }),
		peer("ebgp", 64500, 64501, func(s *v1beta1.BGPPeerSpec) {
			s.PeerAddress, s.EBGPMultiHop, s.PasswordSecret = "10.1.0.2", true, &v1beta1.SecretReference{Name: "bgp-password"}
		}),
		bgpAdv("ibgp", func(s *v1beta1.BGPAdvertisementSpec) {
			s.IPAddressPools, s.AggregationLength, s.LocalPref, s.Peers, s.Communities = []string{"a"}, &agg24, 100, []string{"ibgp"}, []string{"gold", "big"}
		}),
		community("c", "gold", "65000:1", "big", "large:1:2:3"),
		bgpAdv("ebgp", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools, s.Peers = []string{"a"}, []string{"ebgp"} }),
		peer("dynamic", 64500, 0, func(s *v1beta1.BGPPeerSpec) { s.PeerAddress, s.DynamicASN = "10.1.0.3", v1beta1.DynamicASNExternal }),
		peer("with-bfd", 64500, 64501, func(s *v1beta1.BGPPeerSpec) { s.PeerAddress, s.BFDProfile = "10.1.0.4", "fast" }),
		bfdProfile("fast", 100),
	}
	for _, obj := range objs {
		if err := c.Create(ctx(), obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	// An update that stays valid, and one that only annotates (retried
	// when the controller wrote the pool's status meanwhile).
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p v1beta1.IPAddressPool
		if err := c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "b"}, &p); err != nil {
			return err
		}
		p.Spec.Addresses = append(p.Spec.Addresses, "10.0.2.0/24")
		p.Annotations = map[string]string{"note": "grown"}
		return c.Update(ctx(), &p)
	}); err != nil {
		t.Fatalf("valid update: %v", err)
	}
	// The controller accepts what the webhook accepted.
	waitValid(t, c, &v1beta1.BGPAdvertisement{ObjectMeta: om("ibgp")}, metav1.ConditionTrue, "")
	// What names a Community or a BFDProfile goes before it.
	for _, named := range []bool{false, true} {
		for i := len(objs) - 1; i >= 0; i-- {
			switch objs[i].(type) {
			case *v1beta1.Community, *v1beta1.BFDProfile:
				if !named {
					continue
				}
			default:
				if named {
					continue
				}
			}
			if err := c.Delete(ctx(), objs[i]); err != nil {
				t.Fatalf("delete %s: %v", objs[i].GetName(), err)
			}
		}
	}
}

// TestWebhookDownControllerValidates shows why failurePolicy Ignore is
// safe: with the webhook unreachable an invalid object gets in, and the
// controller still reports it on the object's Valid condition and keeps the
// last good configuration.
func TestWebhookDownControllerValidates(t *testing.T) {
	env := testenv.Require(t)
	c := adminClient(t)
	port := freeport.Port(t)
	startController(t, env.Config, port)
	register(t, c, port)
	waitRejecting(t, c)
	clean(t, c)
	t.Cleanup(func() { clean(t, c) })
	if err := c.Create(ctx(), pool("good", "10.0.0.0/24")); err != nil {
		t.Fatal(err)
	}
	waitValid(t, c, pool("good"), metav1.ConditionTrue, "")

	register(t, c, freeport.Port(t)) // nothing listens there
	time.Sleep(time.Second)          // the API server reloads webhook configurations asynchronously
	if err := c.Create(ctx(), pool("overlap", "10.0.0.128/25")); err != nil {
		t.Fatalf("with the webhook down the object should be let in (failurePolicy Ignore): %v", err)
	}
	waitValid(t, c, pool("overlap"), metav1.ConditionFalse, `spec.addresses[0]: "10.0.0.128/25" overlaps "10.0.0.0/24" of pool "good"`)
}

// waitValid waits for the Valid condition of obj to have status and a
// message containing msg.
func waitValid(t *testing.T, c client.Client, obj client.Object, status metav1.ConditionStatus, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if err := c.Get(ctx(), client.ObjectKeyFromObject(obj), obj); err == nil {
			var conds []metav1.Condition
			switch o := obj.(type) {
			case *v1beta1.IPAddressPool:
				conds = o.Status.Conditions
			case *v1beta1.BGPAdvertisement:
				conds = o.Status.Conditions
			}
			if cond := meta.FindStatusCondition(conds, v1beta1.ConditionValid); cond != nil {
				last = fmt.Sprintf("%s: %s", cond.Status, cond.Message)
				if cond.Status == status && strings.Contains(cond.Message, msg) {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: Valid condition is %q, want %s with %q", obj.GetName(), last, status, msg)
}
