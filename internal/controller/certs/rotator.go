package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/herald-lb/herald/internal/pki"
)

// The Secret's name is not known before it exists, so creating it cannot be
// limited by name; everything else is limited to the two objects (the
// manifests use the default names).
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,resourceNames=herald-webhook-cert,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=herald-validating-webhook,verbs=get;list;watch;update

// Defaults for Options.
const (
	DefaultSecretName        = "herald-webhook-cert"
	DefaultWebhookConfigName = "herald-validating-webhook"
	DefaultValidity          = 365 * 24 * time.Hour
	DefaultPropagation       = 5 * time.Second
)

// Options configure the certificate's life cycle.
type Options struct {
	// Namespace and SecretName locate the kubernetes.io/tls Secret.
	Namespace  string
	SecretName string
	// WebhookConfigName is the ValidatingWebhookConfiguration whose
	// webhooks get the caBundle.
	WebhookConfigName string
	// Hosts the serving certificate is for (DNS names or IPs).
	Hosts []string
	// Validity of each certificate.
	Validity time.Duration
	// RenewBefore: replace the certificate this long before it expires
	// (0: a third of Validity).
	RenewBefore time.Duration
	// Propagation is the wait between adding a new CA to the caBundle and
	// serving a certificate it signed (0: DefaultPropagation).
	Propagation time.Duration
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Namespace == "" || o.SecretName == "":
		return errors.New("certs: the Secret's namespace and name must be set")
	case o.WebhookConfigName == "":
		return errors.New("certs: the webhook configuration's name must be set")
	case len(o.Hosts) == 0:
		return errors.New("certs: no hosts for the serving certificate")
	case o.Validity < 3*time.Second:
		return fmt.Errorf("certs: validity %s is shorter than 3s", o.Validity)
	case o.RenewBefore < 0 || o.RenewBefore >= o.Validity:
		return fmt.Errorf("certs: renew-before %s is not within the validity %s", o.RenewBefore, o.Validity)
	case o.Propagation < 0:
		return fmt.Errorf("certs: propagation %s is negative", o.Propagation)
	}
	return nil
}

func (o Options) renewBefore() time.Duration {
	if o.RenewBefore > 0 {
		return o.RenewBefore
	}
	return o.Validity / 3
}

func (o Options) propagation() time.Duration {
	if o.Propagation > 0 {
		return o.Propagation
	}
	return DefaultPropagation
}

// Secret data keys (those of a kubernetes.io/tls Secret, and ca.crt).
const (
	KeyCert = corev1.TLSCertKey
	KeyKey  = corev1.TLSPrivateKeyKey
	KeyCA   = "ca.crt"
)

// Rotator keeps the Secret holding a usable certificate and the caBundle
// holding its CA. It runs on the leader only; see the package comment.
type Rotator struct {
	Client  client.Client
	Options Options
	Log     logr.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// pending is a bundle being rolled out: its CA is (being) published,
	// the Secret not yet written. Only the reconcile goroutine touches it.
	pending *pending
}

type pending struct {
	bundle      pki.Bundle
	publishedAt time.Time // zero until the caBundle holds the CA
}

var rotatorKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "webhook-certificate"}}

// SetupWithManager registers the Rotator: it runs once at start, when the
// Secret or the webhook configuration changes, and when a certificate is
// due.
func (r *Rotator) SetupWithManager(mgr ctrl.Manager) error {
	if err := r.Options.Validate(); err != nil {
		return err
	}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{rotatorKey}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("webhook-certificate").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&corev1.Secret{}, one, named(r.Options.Namespace, r.Options.SecretName)).
		Watches(&admissionregistrationv1.ValidatingWebhookConfiguration{}, one, named("", r.Options.WebhookConfigName)).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(rotatorKey)
			return nil
		})).
		Complete(r)
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile implements reconcile.Reconciler.
func (r *Rotator) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	now := r.now()
	o := r.Options
	var sec corev1.Secret
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.SecretName}, &sec)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("get Secret %s/%s: %w", o.Namespace, o.SecretName, err)
	}
	cur := bundleOf(&sec)
	notAfter, bad := pki.Check(cur, o.Hosts, now)
	renewAt := notAfter.Add(-o.renewBefore())
	if bad == nil && now.Before(renewAt) {
		r.pending = nil
		if _, err := r.publish(ctx, cur.CA, now); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{RequeueAfter: renewAt.Sub(now)}, nil
	}

	why := "due for renewal"
	if bad != nil {
		why = bad.Error()
	}
	if p := r.pending; p == nil || !r.usable(p.bundle, now) {
		b, err := pki.Issue(o.Hosts, now, o.Validity)
		if err != nil {
			return reconcile.Result{}, err
		}
		r.pending = &pending{bundle: b}
		r.Log.Info("issuing a new webhook certificate", "reason", why, "validity", o.Validity.String())
	}
	p := r.pending
	published, err := r.publish(ctx, p.bundle.CA, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	if published && p.publishedAt.IsZero() {
		p.publishedAt = now
	}
	// While the old certificate still serves, let the API server load the
	// new CA before any replica presents a certificate it signed.
	if stillServing := exists && (bad == nil || errors.Is(bad, pki.ErrHosts)); stillServing {
		if p.publishedAt.IsZero() {
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}
		if wait := p.publishedAt.Add(o.propagation()).Sub(now); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	if err := r.writeSecret(ctx, &sec, exists, p.bundle); err != nil {
		return reconcile.Result{}, err
	}
	r.pending = nil
	r.Log.Info("webhook certificate stored", "secret", o.SecretName)
	// The Secret's watch event brings us back to keep the bundle.
	return reconcile.Result{}, nil
}

// usable reports whether a pending bundle may still be rolled out.
func (r *Rotator) usable(b pki.Bundle, now time.Time) bool {
	notAfter, err := pki.Check(b, r.Options.Hosts, now)
	return err == nil && now.Before(notAfter.Add(-r.Options.renewBefore()))
}

// publish makes the caBundle of every webhook of the configuration start
// with ca and keep older CAs until they expire. It reports whether the
// bundle now holds ca; a missing configuration counts as published (there
// is no API server client to wait for).
func (r *Rotator) publish(ctx context.Context, ca []byte, now time.Time) (bool, error) {
	o := r.Options
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.Client.Get(ctx, client.ObjectKey{Name: o.WebhookConfigName}, &cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("get ValidatingWebhookConfiguration %s: %w", o.WebhookConfigName, err)
	}
	var current []byte
	for _, w := range cfg.Webhooks {
		current = append(current, w.ClientConfig.CABundle...)
	}
	merged := pki.MergeCABundle(current, ca, now)
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, merged) {
			cfg.Webhooks[i].ClientConfig.CABundle = merged
			changed = true
		}
	}
	if !changed {
		return true, nil
	}
	if err := r.Client.Update(ctx, &cfg); err != nil {
		return false, fmt.Errorf("update caBundle of %s: %w", o.WebhookConfigName, err)
	}
	r.Log.Info("published the webhook CA bundle", "webhookConfiguration", o.WebhookConfigName)
	return false, nil
}

func (r *Rotator) writeSecret(ctx context.Context, sec *corev1.Secret, exists bool, b pki.Bundle) error {
	o := r.Options
	data := map[string][]byte{KeyCert: b.Cert, KeyKey: b.Key, KeyCA: b.CA}
	if exists {
		// A Secret made by someone else keeps its type: an Opaque one
		// works as well as kubernetes.io/tls.
		sec.Data = data
		if err := r.Client.Update(ctx, sec); err != nil {
			return fmt.Errorf("update Secret %s/%s: %w", o.Namespace, o.SecretName, err)
		}
		return nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.SecretName, Labels: map[string]string{
			"app.kubernetes.io/name": "herald", "app.kubernetes.io/component": "webhook-certificate",
		}},
		Type: corev1.SecretTypeTLS,
		Data: data,
	}
	if err := r.Client.Create(ctx, s); err != nil {
		return fmt.Errorf("create Secret %s/%s: %w", o.Namespace, o.SecretName, err)
	}
	return nil
}

func bundleOf(s *corev1.Secret) pki.Bundle {
	return pki.Bundle{Cert: s.Data[KeyCert], Key: s.Data[KeyKey], CA: s.Data[KeyCA]}
}

// named passes only the events of one object.
func named(namespace, name string) builder.Predicates {
	return builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == namespace && o.GetName() == name
	}))
}
