// Package certs gives the controller's validating webhook a serving
// certificate without cert-manager: the leader mints a CA and a serving
// certificate (package pki), keeps them in a kubernetes.io/tls Secret and
// the CA in the ValidatingWebhookConfiguration's caBundle, and replaces
// them before they expire; every replica serves whatever the Secret holds.
//
// Rotator (leader only) reconciles the Secret and the caBundle:
//   - A usable certificate (pki.Check) is kept until RenewBefore its
//     expiry; meanwhile the caBundle is kept holding its CA (re-added if
//     someone rewrites the webhook configuration).
//   - To replace it, the Rotator mints a new CA and certificate, first adds
//     the new CA to the caBundle (older CAs stay until they expire), waits
//     Propagation so the API server has loaded the bundle, and only then
//     writes the Secret. At every moment the API server trusts the CA of
//     whatever certificate any replica presents.
//   - The CA's private key is never stored (see pki): each rotation is a
//     new CA. A leader that dies between the two steps leaves an unused CA
//     in the bundle until it expires; the next leader starts over.
//
// Store (every replica, leader or not) loads the Secret from the cache and
// hands the certificate to the webhook server's TLS configuration
// (GetCertificate), so a rotation reaches every replica without a restart.
// A replica without a certificate fails the TLS handshake, and so its
// readiness check.
package certs
