// Package bfd runs the node's BFD sessions (RFC 5880 asynchronous mode,
// RFC 5881 single hop, RFC 5883 multi hop) with the routers its BGP peers
// name a BFDProfile for. It is the only package that opens BFD sockets;
// the protocol's decisions (states, timers, packets) are package
// internal/bfd's, which this one feeds with the packets it receives and
// the time.
//
// Invariants: each session sends from its own socket, with a source port
// from 49152-65535 and TTL 255; single-hop packets are accepted only with
// TTL 255 (RFC 5881 section 5), multi-hop ones with at least the session's
// minimum TTL; a packet is matched to its session by its Your
// Discriminator, or when that is 0 by its source address; one goroutine
// (Run) drives every session, so the state machines need no locking of
// their own; the BFD ports are opened with the first session, not before.
package bfd
