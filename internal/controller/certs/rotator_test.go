package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/internal/pki"
)

var hosts = []string{"herald-webhook.herald-system.svc", "127.0.0.1"}

func testOptions() Options {
	return Options{
		Namespace: "herald-system", SecretName: DefaultSecretName, WebhookConfigName: DefaultWebhookConfigName,
		Hosts: hosts, Validity: 90 * time.Second, Propagation: 5 * time.Second,
	}
}

type fixture struct {
	t   *testing.T
	c   client.Client
	now time.Time
	r   *Rotator
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := admissionregistrationv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build(), now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.r = &Rotator{Client: f.c, Options: testOptions(), Log: logr.Discard(), Now: func() time.Time { return f.now }}
	return f
}

func webhookConfig() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultWebhookConfigName},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "a.herald.dev"}, {Name: "b.herald.dev"}},
	}
}

func (f *fixture) reconcile() reconcile.Result {
	f.t.Helper()
	res, err := f.r.Reconcile(context.Background(), reconcile.Request{})
	if err != nil {
		f.t.Fatalf("Reconcile: %v", err)
	}
	return res
}

func (f *fixture) secret() pki.Bundle {
	f.t.Helper()
	var s corev1.Secret
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "herald-system", Name: DefaultSecretName}, &s); err != nil {
		f.t.Fatalf("get Secret: %v", err)
	}
	return bundleOf(&s)
}

func (f *fixture) bundles() [][]byte {
	f.t.Helper()
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := f.c.Get(context.Background(), client.ObjectKey{Name: DefaultWebhookConfigName}, &cfg); err != nil {
		f.t.Fatalf("get webhook configuration: %v", err)
	}
	var out [][]byte
	for _, w := range cfg.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func TestRotatorIssuesAndPublishes(t *testing.T) {
	f := newFixture(t, webhookConfig())
	// Nothing is served yet: no reason to wait before writing the Secret.
	f.reconcile()
	first := f.secret()
	if _, err := pki.Check(first, hosts, f.now); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	res := f.reconcile()
	for i, b := range f.bundles() {
		if cas, _ := pki.ParseCerts(b); len(cas) != 1 || !pki.BundleContains(b, first.CA) {
			t.Errorf("webhook %d: caBundle has %d CAs, want the Secret's", i, len(cas))
		}
	}
	if want := 60 * time.Second; res.RequeueAfter != want {
		t.Errorf("RequeueAfter = %s, want %s (a third of the validity before expiry)", res.RequeueAfter, want)
	}
}

// The new CA is published, and given time to reach the API server, before
// the Secret (which every replica serves from) changes.
func TestRotatorPublishesBeforeServing(t *testing.T) {
	f := newFixture(t, webhookConfig())
	f.reconcile()
	f.reconcile()
	old := f.secret()

	f.now = f.now.Add(61 * time.Second) // past the renewal point
	f.reconcile()                       // publishes the new CA
	if got := f.secret(); string(got.Cert) != string(old.Cert) {
		t.Fatal("the Secret changed before its CA was published")
	}
	bundle := f.bundles()[0]
	cas, _ := pki.ParseCerts(bundle)
	if len(cas) != 2 || !pki.BundleContains(bundle, old.CA) {
		t.Fatalf("caBundle holds %d CAs, want the new and the old", len(cas))
	}
	res := f.reconcile() // sees it published, starts the wait
	if res.RequeueAfter != 5*time.Second {
		t.Errorf("RequeueAfter = %s, want the propagation time", res.RequeueAfter)
	}
	f.now = f.now.Add(2 * time.Second)
	if res := f.reconcile(); res.RequeueAfter != 3*time.Second || string(f.secret().Cert) != string(old.Cert) {
		t.Errorf("wrote the Secret %s into the wait (RequeueAfter %s)", 2*time.Second, res.RequeueAfter)
	}
	f.now = f.now.Add(3 * time.Second)
	f.reconcile()
	cur := f.secret()
	if string(cur.Cert) == string(old.Cert) {
		t.Fatal("the Secret was not rotated after the propagation time")
	}
	newest, _ := pki.ParseCerts(bundle)
	if curCA, _ := pki.ParseCerts(cur.CA); !curCA[0].Equal(newest[0]) {
		t.Error("the Secret's CA is not the one published first")
	}
	// Once the old CA has expired it leaves the bundle.
	f.now = f.now.Add(90 * time.Second)
	f.reconcile() // a new rotation starts; the expired CA goes
	for _, c := range mustParse(t, f.bundles()[0]) {
		if !f.now.Before(c.NotAfter) {
			t.Errorf("expired CA %s still in the bundle", c.Subject)
		}
	}
}

func mustParse(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	cs, err := pki.ParseCerts(b)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestRotatorReplaces(t *testing.T) {
	f := newFixture(t, webhookConfig())
	f.reconcile()
	old := f.secret()

	// New hosts (a renamed Service): the old certificate still serves the
	// old names, so the same publish-then-wait order applies.
	f.r.Options.Hosts = append(f.r.Options.Hosts, "herald-webhook.other.svc")
	f.reconcile()
	if string(f.secret().Cert) != string(old.Cert) {
		t.Fatal("replaced a serving certificate without waiting")
	}
	f.reconcile()
	f.now = f.now.Add(5 * time.Second)
	f.reconcile()
	if _, err := pki.Check(f.secret(), f.r.Options.Hosts, f.now); err != nil {
		t.Fatalf("after a host change: %v", err)
	}

	// A broken Secret is replaced at once: nothing usable is served.
	var s corev1.Secret
	_ = f.c.Get(context.Background(), client.ObjectKey{Namespace: "herald-system", Name: DefaultSecretName}, &s)
	s.Data[KeyKey] = []byte("garbage")
	if err := f.c.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if _, err := pki.Check(f.secret(), f.r.Options.Hosts, f.now); err != nil {
		t.Fatalf("broken Secret not replaced: %v", err)
	}
}

func TestRotatorWithoutWebhookConfiguration(t *testing.T) {
	f := newFixture(t)
	f.reconcile()
	if _, err := pki.Check(f.secret(), hosts, f.now); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(61 * time.Second)
	f.reconcile() // no configuration to wait for
	f.reconcile()
	f.now = f.now.Add(5 * time.Second)
	f.reconcile()
	if _, err := pki.Check(f.secret(), hosts, f.now); err != nil {
		t.Fatal(err)
	}
}

func TestStore(t *testing.T) {
	f := newFixture(t)
	st := &Store{Reader: f.c, Namespace: "herald-system", Name: DefaultSecretName, Log: logr.Discard()}
	if _, err := st.GetCertificate(&tls.ClientHelloInfo{}); err != ErrNoCertificate {
		t.Fatalf("GetCertificate before loading: %v", err)
	}
	if _, err := st.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if _, err := st.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	c, err := st.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || st.Current() == nil || c.Leaf.SerialNumber.Cmp(st.Current().SerialNumber) != 0 {
		t.Fatalf("GetCertificate after loading: %v", err)
	}
	certs, _ := pki.ParseCerts(f.secret().Cert)
	if !certs[0].Equal(st.Current()) {
		t.Error("the Store serves another certificate than the Secret's")
	}
	// A broken Secret keeps the current certificate.
	var s corev1.Secret
	_ = f.c.Get(context.Background(), client.ObjectKey{Namespace: "herald-system", Name: DefaultSecretName}, &s)
	s.Data[KeyCert] = []byte("garbage")
	_ = f.c.Update(context.Background(), &s)
	if _, err := st.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	if !certs[0].Equal(st.Current()) {
		t.Error("a broken Secret replaced the served certificate")
	}
}

func TestOptionsValidate(t *testing.T) {
	good := testOptions()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, mod := range map[string]func(*Options){
		"no secret":          func(o *Options) { o.SecretName = "" },
		"no configuration":   func(o *Options) { o.WebhookConfigName = "" },
		"no hosts":           func(o *Options) { o.Hosts = nil },
		"short validity":     func(o *Options) { o.Validity = time.Second },
		"renew before":       func(o *Options) { o.RenewBefore = o.Validity },
		"negative propagate": func(o *Options) { o.Propagation = -1 },
	} {
		o := testOptions()
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
}
