// Package responder is the engine shared by the ARP and NDP responders: it
// keeps the desired state (interface -> addresses answered for on it), owns
// one socket per interface that has addresses, answers through it only for
// those addresses, announces newly taken addresses, and reopens sockets
// that fail. The protocol specifics (opening the socket, parsing requests,
// building answers and announcements, multicast groups) come from a
// Protocol; the engine never sees a packet.
//
// Invariants:
//   - A link (open socket) exists only for an interface of the desired state
//     that has addresses and is ready (up; for NDP with a usable link-local
//     address). Its owned set always equals the desired addresses for it.
//   - Every answer and every announcement is written while the link's lock
//     is held and after checking the owned set under it; Reconcile updates
//     the set under the same lock. So once Reconcile returns, nothing more
//     is sent for a removed address, and pending announcements of it are
//     dropped.
//   - Addresses new on a link (added by Reconcile, or present when the link
//     is opened or reopened) are announced Gratuitous times, the first at
//     once and the rest GratuitousInterval apart.
//   - Other hosts' claims of an owned address (Answerer.Conflict) are kept
//     per address, MAC and kind while the address stays owned, at most
//     1,024 per link, and reported to Options.OnConflict once per run (a
//     probe at once, a use once it has lasted 2 s; a new run after 10
//     minutes without one).
//   - Only Run starts goroutines (a reader and an announcer per link); when
//     its context ends it closes every socket and waits for them.
//   - Failing opens are retried on a timer with exponential backoff
//     (RetryMin to RetryMax). A full resync (interfaces gone, re-created,
//     down, no longer ready; links missing) runs when the interfaces change
//     (Options.Changes, by default ifaces.Watch, coalesced over
//     ChangeDelay), when Reconcile names an interface not tried yet (on
//     every Reconcile if changes are not watched), after a socket fails,
//     and every ResyncInterval. No sleep loops.
//   - A permission error opening a socket is fatal: Run returns it wrapped
//     in ErrPermission.
package responder
