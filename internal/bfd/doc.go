// Package bfd holds the decision part of Bidirectional Forwarding Detection
// (RFC 5880) in asynchronous mode: the Control packet codec and the
// per-session state machine. Authentication, the Echo function and Demand
// mode are not implemented: packets with the A bit set are rejected, the D
// bit is never sent and Required Min Echo RX Interval is always 0.
//
// The package is pure. It opens no sockets, starts no goroutines, never
// logs, never reads the clock and uses no global randomness: every method
// that depends on time takes now, and a Session draws its transmit jitter
// from the Jitter function it was given. A Session is not safe for
// concurrent use. The caller (an adapter owning the UDP sockets and timers)
// drives it:
//
//   - Unmarshal each datagram, find the session by Your Discriminator (or by
//     address while it is 0) and call Receive; when it returns true, send
//     Transmit(now) at once.
//   - At NextEvent call Expire, then, when DueTx reports true, send
//     Transmit(now).
//
// Invariants kept by a Session:
//   - while the state is not Up, the Desired Min TX it advertises and uses is
//     at least one second (RFC 5880 section 6.8.3);
//   - the periodic interval is the larger of the local Desired Min TX in use
//     and the remote Required Min RX, reduced by 0–25% jitter (0–10% more
//     with a Detect Mult of 1) per section 6.8.7; nothing is sent
//     periodically while the remote Required Min RX is 0 or while a passive
//     session has not heard from its peer;
//   - while Down or Init every packet carries Poll, so the remote answers at
//     once with Final instead of at its slow rate (section 6.5 obliges the
//     answer whatever the session state);
//   - a parameter change while Up runs a Poll Sequence (section 6.5); a
//     larger Desired Min TX or a smaller Required Min RX is only put in use
//     once the peer answered with Final;
//   - no packet carries both Poll and Final.
package bfd
