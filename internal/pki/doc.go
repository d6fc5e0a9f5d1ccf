// Package pki mints and checks the validating webhook's serving
// certificate: a fresh ECDSA P-256 certificate authority and a serving
// certificate it signs, and the CA bundle the API server trusts.
//
// It is pure: it takes the time and the host names as arguments, reads no
// cluster state, never logs and starts no goroutines. Randomness comes from
// crypto/rand.
//
// Invariants:
//   - Every Issue makes a new CA. The CA's private key is used once, to sign
//     the serving certificate, and is then dropped: it is never returned,
//     so nothing can store it. A rotation is therefore always a new CA too.
//   - A Bundle is usable (Check returns nil) only when its certificate and
//     key match, the certificate chains to its CA for every requested host,
//     and it is within its validity.
//   - MergeCABundle puts the newest CA first and keeps older CAs until they
//     expire, so a server still presenting a certificate signed by an older
//     CA stays trusted while it reloads.
package pki
