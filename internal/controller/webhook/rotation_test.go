package webhook_test

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/controller/certs"
	"github.com/herald-lb/herald/internal/pki"
	"github.com/herald-lb/herald/internal/testenv"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

// TestCertificateRotation runs two replicas with leader election and a
// 9-second certificate (renewed every 6 s). The API server calls the
// replica that does not lead; the leader rotates; the other replica must
// pick every new certificate up from the Secret while the webhook keeps
// rejecting invalid objects, before and after the leader hands over.
func TestCertificateRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("rotation takes about 30 s")
	}
	env := testenv.Require(t)
	c := adminClient(t)
	clean(t, c)
	t.Cleanup(func() { clean(t, c) })
	_ = c.DeleteAllOf(ctx(), &corev1.Secret{}, client.InNamespace(ns))

	short := func(o *controller.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = "herald-rotation-test"
		o.WebhookCertValidity = 9 * time.Second
		o.WebhookCertPropagation = time.Second
	}
	leaderPort, otherPort := freeport.Port(t), freeport.Port(t)
	register(t, c, otherPort)
	stopLeader := startController(t, env.Config, leaderPort, short)
	first := waitSecret(t, c, nil)
	startController(t, env.Config, otherPort, short)
	waitRejecting(t, c)

	// Rotations by the first leader, then by the second after a handover.
	seen := []string{serialOf(t, first)}
	for round := range 4 {
		if round == 2 {
			stopLeader() // releases the Lease: the other replica takes over
		}
		next := waitSecret(t, c, first)
		seen = append(seen, serialOf(t, next))
		waitServing(t, otherPort, serialOf(t, next))
		checkBundle(t, c, next)
		assertRejects(t, c)
		first = next
	}
	t.Logf("served certificates %v", seen)
}

// waitSecret waits for the webhook Secret to hold a usable certificate
// other than the one in prev (nil: any); with a prev, the webhook must keep
// rejecting meanwhile.
func waitSecret(t *testing.T, c client.Client, prev *corev1.Secret) *corev1.Secret {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var s corev1.Secret
		if err := c.Get(ctx(), client.ObjectKey{Namespace: ns, Name: certs.DefaultSecretName}, &s); err == nil {
			if prev == nil || string(prev.Data[certs.KeyCert]) != string(s.Data[certs.KeyCert]) {
				b := pki.Bundle{Cert: s.Data[certs.KeyCert], Key: s.Data[certs.KeyKey], CA: s.Data[certs.KeyCA]}
				if _, err := pki.Check(b, []string{"127.0.0.1", "herald-webhook.herald-system.svc"}, time.Now()); err != nil {
					t.Fatalf("the Secret holds an unusable certificate: %v", err)
				}
				return &s
			}
		}
		if prev != nil {
			assertRejects(t, c)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatal("no new certificate within 30s")
	return nil
}

func serialOf(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	certs, err := pki.ParseCerts(s.Data["tls.crt"])
	if err != nil || len(certs) == 0 {
		t.Fatalf("tls.crt: %v", err)
	}
	return certs[0].SerialNumber.String()
}

// waitServing waits until the replica on port presents the certificate
// with serial.
func waitServing(t *testing.T, port int, serial string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only reads the certificate
		if err == nil {
			got = conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
			conn.Close()
			if got == serial {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("replica on %d serves certificate %s, want %s", port, got, serial)
}

// checkBundle checks the webhook configuration trusts the Secret's CA and
// holds no expired CA beyond what one rotation leaves.
func checkBundle(t *testing.T, c client.Client, s *corev1.Secret) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var cfg admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx(), client.ObjectKey{Name: certs.DefaultWebhookConfigName}, &cfg); err != nil {
			t.Fatal(err)
		}
		bundle := cfg.Webhooks[0].ClientConfig.CABundle
		if pki.BundleContains(bundle, s.Data[certs.KeyCA]) {
			if cas, _ := pki.ParseCerts(bundle); len(cas) > 3 {
				t.Errorf("caBundle holds %d CAs; expired ones should go", len(cas))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the caBundle does not hold the Secret's CA")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertRejects creates an invalid pool, which must be refused: with
// failurePolicy Ignore, a webhook the API server cannot reach or does not
// trust would let it in.
func assertRejects(t *testing.T, c client.Client) {
	t.Helper()
	p := pool("during-rotation", "300.0.0.0/24")
	err := c.Create(ctx(), p)
	if err == nil {
		_ = c.Delete(ctx(), p)
		t.Fatal("an invalid pool got in: the API server did not reach the webhook")
	}
}
