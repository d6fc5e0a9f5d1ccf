// Package model holds Herald's domain values: the validated configuration
// (pools, advertisements, peers) and the values the allocator and the
// speakers trade in (ServiceKey, Request, Assignment).
//
// Values here are plain data with netip addresses. They import nothing from
// Kubernetes or the network; adapters convert at the edges. A Config, once
// built by package config, is immutable and safe to share between
// goroutines.
package model
