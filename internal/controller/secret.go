package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MemberlistSecretKey is the key of the memberlist Secret's data.
const MemberlistSecretKey = "secretkey"

// memberlistSecret creates the speakers' gossip Secret with a random key
// when it does not exist. It runs once on the leader; an existing Secret
// is never changed.
type memberlistSecret struct {
	client client.Client
	// reader reads the Secret from the API server: the cache holds no
	// Secrets but the webhook's.
	reader    client.Reader
	namespace string
	name      string
	log       logr.Logger
}

func (m *memberlistSecret) NeedLeaderElection() bool { return true }

func (m *memberlistSecret) Start(ctx context.Context) error {
	var s corev1.Secret
	err := m.reader.Get(ctx, client.ObjectKey{Namespace: m.namespace, Name: m.name}, &s)
	if err == nil || !apierrors.IsNotFound(err) {
		return client.IgnoreNotFound(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	s = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.namespace, Name: m.name},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{MemberlistSecretKey: []byte(base64.StdEncoding.EncodeToString(key))},
	}
	if err := m.client.Create(ctx, &s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create memberlist secret %s/%s: %w", m.namespace, m.name, err)
	}
	m.log.Info("created the speakers' memberlist secret", "secret", m.name)
	return nil
}
