// Package ndp answers IPv6 neighbor solicitations for the addresses this
// node owns on chosen interfaces, and announces addresses it takes over
// with unsolicited neighbor advertisements. It is the only package that
// imports github.com/mdlayher/ndp. Sockets are ICMPv6 raw sockets, one
// per interface with addresses, filtered to neighbor solicitations. They
// are bound to the unspecified address (ndp.Unspecified), not to the
// link-local one: a raw socket bound to an address gets only unicast
// packets for that address, and neighbour unreachability probes are
// unicast to the VIP, so clients' entries would go FAILED every time they
// are probed. Such a socket is not tied to its interface; packets that
// arrived on another interface (told by the IPV6_PKTINFO interface index)
// are dropped. Answers and announcements are sent from the interface's
// link-local address, so the interface needs one (Ready).
//
// The addresses are not configured on the interface (the node holds them
// on lo), so the kernel does not answer for them there; this responder
// does.
//
// Invariants:
//   - The socket is a member of the solicited-node multicast group of
//     every address answered for on it, and of no other group it joined:
//     groups are reference-counted, since addresses that share their last
//     24 bits share a group.
//   - An advertisement is sent only for a solicitation that arrived on the
//     socket's interface, passes the checks of RFC 4861 7.1.1 (hop limit
//     255, code 0, unicast target, unspecified source only towards a
//     solicited-node group and without a source link-layer option), is not
//     this host's own (source other than the interface's link-local
//     address, source link-layer address other than the interface's MAC),
//     and targets an address in the desired set for the interface, whether
//     it came to the solicited-node group or unicast. It carries the interface MAC as target link-layer
//     address option and the Override flag; it goes to the source with the
//     Solicited flag, or to ff02::1 without it when the source is
//     unspecified (duplicate address detection).
//   - Duplicate address detection for an owned address (a solicitation
//     from the unspecified address) is answered and reported to
//     Options.OnConflict as a probe, its MAC unknown.
//   - A newly taken address is announced Gratuitous times with an
//     unsolicited advertisement (Override set, Solicited clear) to ff02::1.
//   - Once Reconcile returns, a removed address is no longer answered and
//     its group is left (unless another answered address shares it).
//
// The engine behind Responder (desired state, per-interface sockets,
// announcements, reopening) is shared with package arp; see
// internal/announce/internal/responder.
package ndp
