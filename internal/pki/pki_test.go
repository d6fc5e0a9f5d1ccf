package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	hosts = []string{"herald-webhook.herald-system.svc", "herald-webhook", "127.0.0.1"}
)

func issue(t *testing.T, now time.Time, validity time.Duration) Bundle {
	t.Helper()
	b, err := Issue(hosts, now, validity)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return b
}

func TestIssue(t *testing.T) {
	b := issue(t, t0, time.Hour)
	pair, err := tls.X509KeyPair(b.Cert, b.Key)
	if err != nil {
		t.Fatalf("key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	cas, err := ParseCerts(b.CA)
	if err != nil || len(cas) != 1 {
		t.Fatalf("CA: %v, %d certificates", err, len(cas))
	}
	ca := cas[0]
	if !ca.IsCA || leaf.IsCA {
		t.Errorf("IsCA: CA %v, serving %v", ca.IsCA, leaf.IsCA)
	}
	if diff := cmp.Diff([]string{"herald-webhook.herald-system.svc", "herald-webhook"}, leaf.DNSNames); diff != "" {
		t.Errorf("DNS names (-want +got):\n%s", diff)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP addresses: %v", leaf.IPAddresses)
	}
	if !leaf.NotBefore.Equal(t0.Add(-Backdate)) || !leaf.NotAfter.Equal(t0.Add(time.Hour)) {
		t.Errorf("validity %s..%s", leaf.NotBefore, leaf.NotAfter)
	}
	if string(leaf.AuthorityKeyId) != string(ca.SubjectKeyId) || len(ca.SubjectKeyId) == 0 {
		t.Error("serving certificate's authority key ID is not the CA's subject key ID")
	}
	if k, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("private key %T, want ECDSA P-256", pair.PrivateKey)
	}
	b2 := issue(t, t0, time.Hour)
	if ca2, _ := ParseCerts(b2.CA); ca2[0].Equal(ca) || ca2[0].Subject.String() == "" {
		t.Error("two Issues made the same CA")
	}
	if _, err := Issue(nil, t0, time.Hour); err == nil {
		t.Error("Issue without hosts succeeded")
	}
	if _, err := Issue(hosts, t0, 0); err == nil {
		t.Error("Issue with zero validity succeeded")
	}
}

func TestCheck(t *testing.T) {
	good := issue(t, t0, time.Hour)
	other := issue(t, t0, time.Hour)
	tests := []struct {
		name  string
		b     Bundle
		hosts []string
		now   time.Time
		want  error
	}{
		{"good", good, hosts, t0, nil},
		{"good, subset of hosts", good, hosts[:1], t0.Add(59 * time.Minute), nil},
		{"missing", Bundle{}, hosts, t0, ErrMissing},
		{"garbage", Bundle{Cert: []byte("x"), Key: []byte("y"), CA: []byte("z")}, hosts, t0, ErrInvalid},
		{"key of another", Bundle{Cert: good.Cert, Key: other.Key, CA: good.CA}, hosts, t0, ErrInvalid},
		{"CA of another", Bundle{Cert: good.Cert, Key: good.Key, CA: other.CA}, hosts, t0, ErrInvalid},
		{"no CA", Bundle{Cert: good.Cert, Key: good.Key}, hosts, t0, ErrInvalid},
		{"new host", good, append([]string{"herald-webhook.herald-system.svc.cluster.local"}, hosts...), t0, ErrHosts},
		{"new IP", good, []string{"10.0.0.1"}, t0, ErrHosts},
		{"expired", good, hosts, t0.Add(time.Hour), ErrExpired},
		{"not yet valid", good, hosts, t0.Add(-2 * Backdate), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notAfter, err := Check(tt.b, tt.hosts, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if tt.want == nil && !notAfter.Equal(t0.Add(time.Hour)) {
				t.Errorf("notAfter %s", notAfter)
			}
		})
	}
}

func TestMergeCABundle(t *testing.T) {
	a := issue(t, t0, time.Hour).CA
	b := issue(t, t0.Add(40*time.Minute), time.Hour).CA
	c := issue(t, t0.Add(80*time.Minute), time.Hour).CA
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		current []byte
		ca      []byte
		now     time.Time
		want    []byte
	}{
		{"empty", nil, a, t0, a},
		{"same", a, a, t0, a},
		{"rotation keeps the old CA", a, b, t0.Add(40 * time.Minute), cat(b, a)},
		{"already merged", cat(b, a), b, t0.Add(41 * time.Minute), cat(b, a)},
		{"older CA expired", cat(b, a), c, t0.Add(80 * time.Minute), cat(c, b)},
		{"garbage dropped", []byte("not pem"), a, t0, a},
		{"new CA moves first", cat(a, b), b, t0.Add(40 * time.Minute), cat(b, a)},
		{"duplicates dropped", cat(a, b, a, b), c, t0.Add(50 * time.Minute), cat(c, a, b)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeCABundle(tt.current, tt.ca, tt.now)
			if diff := cmp.Diff(string(tt.want), string(got)); diff != "" {
				t.Errorf("bundle (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBundleContains(t *testing.T) {
	a := issue(t, t0, time.Hour).CA
	b := issue(t, t0, time.Hour).CA
	bundle := MergeCABundle(a, b, t0)
	for _, tt := range []struct {
		name   string
		bundle []byte
		ca     []byte
		want   bool
	}{
		{"first", bundle, b, true},
		{"second", bundle, a, true},
		{"absent", a, b, false},
		{"empty CA", bundle, nil, false},
		{"empty bundle", nil, a, false},
	} {
		if got := BundleContains(tt.bundle, tt.ca); got != tt.want {
			t.Errorf("%s: BundleContains = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The chain a client builds from a merged bundle verifies certificates of
// both the old and the new CA.
func TestMergedBundleVerifiesBoth(t *testing.T) {
	old := issue(t, t0, time.Hour)
	cur := issue(t, t0.Add(40*time.Minute), time.Hour)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(MergeCABundle(old.CA, cur.CA, t0.Add(40*time.Minute))) {
		t.Fatal("bundle does not parse")
	}
	for name, b := range map[string]Bundle{"old": old, "new": cur} {
		certs, _ := ParseCerts(b.Cert)
		if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: hosts[0], Roots: roots, CurrentTime: t0.Add(45 * time.Minute)}); err != nil {
			t.Errorf("%s serving certificate: %v", name, err)
		}
	}
}
