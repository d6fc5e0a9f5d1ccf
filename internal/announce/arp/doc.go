// Package arp answers ARP requests for the IPv4 addresses this node owns
// on chosen interfaces, and announces addresses it takes over with
// gratuitous ARP. It is the only package that imports
// github.com/mdlayher/arp (for the ARP packet format); sockets are raw
// AF_PACKET sockets bound to the ARP ethertype, one per interface with
// addresses.
//
// The addresses are not configured on the interface (the node holds them
// on lo, with arp_ignore=1 and arp_announce=2 so the kernel stays silent
// for them on other interfaces); this responder is what makes neighbours
// send their traffic for them to this node.
//
// Invariants:
//   - A reply is sent only for a request (opcode 1, Ethernet/IPv4) whose
//     target is an address in the desired set for the interface it arrived
//     on, broadcast or unicast to the interface's MAC, from a unicast
//     sender that is not this interface. The reply goes from the
//     interface's MAC to the requester's MAC with the owned address as
//     sender IP.
//   - Every request says what its sender claims, and the engine keeps the
//     claims of owned addresses by other hosts (Options.OnConflict): a
//     gratuitous request (sender IP equal to target IP; not answered) and
//     any other request claim the sender IP as used, a probe (sender IP
//     0.0.0.0; answered, so the prober learns the address is taken)
//     claims the target. A use is reported only when it is still seen 2 s
//     after the first (a handover shows the old and the new owner both
//     announcing for well under a second), a probe at once.
//   - The socket sees only ARP requests (a BPF filter drops replies in the
//     kernel) and, with PACKET_IGNORE_OUTGOING, not the frames this host
//     sends.
//   - A newly taken address is announced in both forms, Gratuitous times:
//     a broadcast request (sender IP = target IP = the address, target MAC
//     zero) and a broadcast reply (target MAC = sender MAC, which Linux
//     treats as gratuitous and applies at once, ignoring locktime).
//     GratuitousSent counts packets, so two per round. A round over many
//     addresses sends every request before any reply.
//   - Once Reconcile returns, a removed address is no longer answered.
//
// The engine behind Responder (desired state, per-interface sockets,
// announcements, reopening) is shared with package ndp; see
// internal/announce/internal/responder.
package arp
