package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ErrNoCertificate is GetCertificate's error before the Secret was loaded.
var ErrNoCertificate = errors.New("no webhook certificate loaded yet")

// Store holds the certificate this replica serves, loaded from the Secret
// whenever it changes. It runs on every replica.
type Store struct {
	// Reader reads the Secret (the manager's cache).
	Reader    client.Reader
	Namespace string
	Name      string
	Log       logr.Logger

	cert atomic.Pointer[tls.Certificate]
}

// GetCertificate is for tls.Config.GetCertificate.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, ErrNoCertificate
}

// Current returns the certificate being served, or nil.
func (s *Store) Current() *x509.Certificate {
	if c := s.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// SetupWithManager registers the Store as a controller that runs on every
// replica, not only the leader.
func (s *Store) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("webhook-certificate-loader").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, NeedLeaderElection: ptr.To(false)}).
		For(&corev1.Secret{}, named(s.Namespace, s.Name)).
		Complete(s)
}

// Reconcile loads the Secret. A missing or broken Secret leaves the
// current certificate in place: the leader will write a good one.
func (s *Store) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	var sec corev1.Secret
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	pair, err := tls.X509KeyPair(sec.Data[KeyCert], sec.Data[KeyKey])
	if err != nil {
		s.Log.Error(err, "the webhook certificate Secret does not hold a usable certificate; keeping the current one", "secret", s.Name)
		return reconcile.Result{}, nil
	}
	if old := s.cert.Load(); old != nil && bytes.Equal(old.Certificate[0], pair.Certificate[0]) {
		return reconcile.Result{}, nil
	}
	s.cert.Store(&pair)
	s.Log.Info("serving a new webhook certificate", "serial", pair.Leaf.SerialNumber.String(), "notAfter", pair.Leaf.NotAfter)
	return reconcile.Result{}, nil
}
