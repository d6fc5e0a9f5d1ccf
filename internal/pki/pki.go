package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Bundle is a serving certificate with its key and the CA that signed it,
// each PEM-encoded, as stored in a kubernetes.io/tls Secret (tls.crt,
// tls.key, ca.crt).
type Bundle struct {
	Cert []byte
	Key  []byte
	CA   []byte
}

// Backdate is how far before issuing a certificate's validity starts, so
// that an API server whose clock is a little behind still accepts it.
const Backdate = time.Minute

// Sentinel errors of Check; the error returned wraps one of them.
var (
	// ErrMissing: the bundle is empty.
	ErrMissing = errors.New("no certificate")
	// ErrInvalid: the bundle cannot be parsed, the key does not match, or
	// the certificate does not chain to the CA.
	ErrInvalid = errors.New("invalid certificate")
	// ErrHosts: the certificate does not name every requested host.
	ErrHosts = errors.New("certificate does not cover the hosts")
	// ErrExpired: the certificate is outside its validity.
	ErrExpired = errors.New("certificate expired or not yet valid")
)

// Issue makes a new CA and a serving certificate for hosts (DNS names or
// IP addresses; the first is the certificate's common name), both valid
// from now-Backdate to now+validity.
func Issue(hosts []string, now time.Time, validity time.Duration) (Bundle, error) {
	if len(hosts) == 0 {
		return Bundle{}, errors.New("pki: no hosts")
	}
	if validity <= 0 {
		return Bundle{}, fmt.Errorf("pki: validity %s is not positive", validity)
	}
	notBefore, notAfter := now.Add(-Backdate).UTC(), now.Add(validity).UTC()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Bundle{}, fmt.Errorf("pki: CA key: %w", err)
	}
	caSerial, err := serial()
	if err != nil {
		return Bundle{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: caSerial,
		// A distinct subject per CA, so old and new CAs in one bundle are
		// told apart by name as well as by key identifier.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("herald-webhook-ca@%d", now.Unix()), Organization: []string{"herald"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// SubjectKeyId is derived from the key by CreateCertificate, and
		// becomes the serving certificate's AuthorityKeyId.
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Bundle{}, fmt.Errorf("pki: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Bundle{}, fmt.Errorf("pki: CA certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Bundle{}, fmt.Errorf("pki: serving key: %w", err)
	}
	leafSerial, err := serial()
	if err != nil {
		return Bundle{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: leafSerial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"herald"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return Bundle{}, fmt.Errorf("pki: serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Bundle{}, fmt.Errorf("pki: serving key: %w", err)
	}
	return Bundle{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// Check reports whether b can serve hosts at now, and returns when its
// serving certificate expires. A nil error means usable; the caller decides
// how long before the expiry to replace it.
func Check(b Bundle, hosts []string, now time.Time) (notAfter time.Time, err error) {
	if len(b.Cert) == 0 && len(b.Key) == 0 && len(b.CA) == 0 {
		return time.Time{}, ErrMissing
	}
	pair, err := tls.X509KeyPair(b.Cert, b.Key)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	cas, err := ParseCerts(b.CA)
	if err != nil || len(cas) == 0 {
		return time.Time{}, fmt.Errorf("%w: ca.crt holds no certificate", ErrInvalid)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return leaf.NotAfter, fmt.Errorf("%w: valid from %s to %s", ErrExpired, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	for _, h := range hosts {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		var hostErr x509.HostnameError
		switch {
		case errors.As(err, &hostErr):
			return leaf.NotAfter, fmt.Errorf("%w: %v", ErrHosts, err)
		case err != nil:
			return leaf.NotAfter, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return leaf.NotAfter, nil
}

// MergeCABundle returns the CA bundle to publish: ca first, then every
// certificate of current that is not ca and has not expired at now. Parts
// of current that do not parse are dropped.
func MergeCABundle(current, ca []byte, now time.Time) []byte {
	var out bytes.Buffer
	out.Write(ca)
	seen, _ := ParseCerts(ca)
	old, _ := ParseCerts(current)
	for _, c := range old {
		if !now.Before(c.NotAfter) || slices.ContainsFunc(seen, c.Equal) {
			continue
		}
		seen = append(seen, c)
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return out.Bytes()
}

// BundleContains reports whether every certificate of ca is in bundle.
func BundleContains(bundle, ca []byte) bool {
	want, err := ParseCerts(ca)
	if err != nil || len(want) == 0 {
		return false
	}
	have, _ := ParseCerts(bundle)
	for _, w := range want {
		if !slices.ContainsFunc(have, w.Equal) {
			return false
		}
	}
	return true
}

// ParseCerts parses the CERTIFICATE blocks of PEM data, skipping other
// blocks. It returns the certificates parsed before the first that fails.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return out, fmt.Errorf("pki: %w", err)
		}
		out = append(out, c)
	}
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
