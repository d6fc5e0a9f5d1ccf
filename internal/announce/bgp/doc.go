// Package bgp announces this node's routes to its BGP peers with one
// embedded GoBGP server. It is the only package that imports
// github.com/osrg/gobgp.
//
// The caller says what it wants with Reconcile(ctx, Desired): the router
// ID, every peer (session settings) and, per peer, every route (prefix,
// next hop, communities, local preference). Reconcile makes GoBGP match,
// idempotently and incrementally:
//
//   - A peer whose session settings did not change is not touched (its
//     session stays up); a changed peer is deleted and added again; a
//     peer no longer wanted is deleted (GoBGP sends a Cease NOTIFICATION).
//     Every peer uses its own local AS (GoBGP's per-neighbor local-as), so
//     peers may differ in myASN. Both IPv4 and IPv6 unicast are offered on
//     every session (multiprotocol); what the peer also offers is used.
//   - A route is one GoBGP path per prefix, added once whatever the number
//     of peers. Per-peer differences (who gets the prefix, its next hop,
//     communities, large communities, local preference) come from the
//     global export policy: every distinct (peer, attributes) pair is a
//     "class" with a tag, a standard community 0:N from the reserved
//     range 0:1-0:65535. A path carries the tags of the classes it belongs
//     to; the export policy has one statement per class that matches the
//     peer (a neighbor set) and the tag (a community set), replaces the
//     path's communities with the class's (so tags never leave the node),
//     sets its large communities, local preference and next hop, and
//     accepts. Everything else is rejected, so received routes are never
//     passed on and a prefix goes only to the peers that should have it.
//     The policy changes only when classes come or go, not per route; a
//     route moving between classes is a path whose tags changed, which
//     GoBGP re-sends to the peers that accept it and withdraws from those
//     that accepted the old one.
//   - Ordering keeps every step sound: statements for new classes are
//     installed before peers and paths that use them; paths change next;
//     statements no longer used go last.
//   - Routes received from peers are rejected on import: the speaker
//     originates, it does not route.
//
// Run(ctx) serves the GoBGP server and, when ctx ends, closes every
// session with a NOTIFICATION (Cease) before the connection closes, then
// returns; routers withdraw the node's routes at once instead of waiting
// for the hold timer. Sessions with graceful restart are left open
// (unless Options.CloseAll): the process's exit closes them without a
// NOTIFICATION, so their routers keep the routes until the speaker is
// back (RFC 4724). Reconcile returns ErrStopped afterwards.
//
// Sessions reports each session's state (from GoBGP's peer-state watch),
// the prefixes GoBGP sends it (after the export policy) and the UPDATE
// messages sent; Changes signals every state change.
//
// GoBGP cannot express a holdTime of 0 (it then uses 90s), has one router
// ID per server (the first peer's routerID, see package speaker), and its
// server loop has no stop: after Run returns that goroutine idles until
// the process exits.
package bgp
