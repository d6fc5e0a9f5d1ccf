// Package allocator decides which addresses LoadBalancer Services get from
// the configured pools. It is pure: it takes model values (a model.Config,
// model.Requests) and returns model values (model.Assignments, Displaced
// lists, sentinel errors). It imports nothing from Kubernetes, never logs,
// and starts no goroutines. An Allocator is not safe for concurrent use;
// the controller holds one mutex around it.
//
// # Rules
//
// Pool choice, by precedence:
//  1. Request.IPs: every address must be in a pool (model.Config.PoolFor
//     semantics), all in the same pool, that pool must be Request.Pool when
//     set and must serve the Service (serviceAllocation); autoAssign does
//     not matter. Each address must be free or shareable.
//  2. Request.Pool: that pool only; it must exist and serve the Service;
//     autoAssign does not matter.
//  3. Otherwise the autoAssign pools that serve the Service: those with a
//     serviceAllocation first, by priority (0 after every other priority),
//     then those without; ties by name. The first pool able to give every
//     wanted family wins; nothing is taken from the pools that fail.
//
// Families: SingleStack gets one address of Families[0] (IPv4 when the
// pool has IPv4 and Families is empty, else IPv6). PreferDualStack gets
// one address of each family the pool has, or, when Families lists one
// (a single-stack cluster), is SingleStack; RequireDualStack one of each
// or fails. Assignment.IPs are ordered primary family first (Families
// order; IPv4 first when Families is empty).
//
// Sharing: Services may hold the same address only if they all have the
// same non-empty sharing key, no (protocol, port) in common, the same
// externalTrafficPolicy, and, when Local, the same pod selector. A
// Service with a sharing key and no specific address first joins the
// lowest compatible address already held under its key in the chosen
// pool and family, else takes the lowest free one.
//
// Keeping: Assign keeps what a Service holds when it still satisfies the
// request: same pool as Request.Pool, exactly Request.IPs, a family
// wanted by the policy, sharing still compatible with the other holders
// after the Service's own ports, key or policy changed. serviceAllocation
// and autoAssign are not checked again for an address the Service
// already holds. Within the same pool, a family the policy now wants is
// added and a family it no longer wants is dropped. When nothing can be
// kept the Service is released and allocated anew. After a controller
// restart the allocator has no record; Request.Current (the addresses in
// the Service's status) is then kept under the same rules when those
// addresses are free or shareable, so feeding every existing Service
// through Assign before any new one moves no address.
//
// SetConfig keeps every assignment whose addresses are still assignable
// (the pool name follows the address) and returns the others as
// Displaced, with a reason a human can act on. A dual-stack Service that
// loses one family's address keeps the other's, so that address cannot
// go to another Service before this one is assigned again.
//
// # Invariants
//
//   - An address in use lies in exactly one pool's ranges, is not a
//     buggy .0/.255 address of a pool avoiding them, and its holders are
//     pairwise sharing-compatible with the same key.
//   - A Service holds at most one address per family, all from one pool.
//   - After Assign the Service holds exactly the returned assignment; when
//     Assign fails it holds nothing (its previous addresses are released).
//   - Per pool and family the addresses in use are kept as maximal runs
//     (see run): buggy addresses and the holes between a pool's ranges
//     glue runs together, so the lowest free address is always the
//     pool's first assignable address or the address after the first run.
//
// # Errors
//
// Every error wraps one sentinel (ErrUnknownPool, ErrPoolNotAllowed,
// ErrNotInPool, ErrIPInUse, ErrPoolExhausted, ErrNoPool, ErrFamily) for
// errors.Is, with a message naming the pool, address or Service at fault.
//
// # Costs
//
// With A addresses in use in a pool and family, R ranges and S Services:
//   - Assign: O(log A + log R) per pool tried, plus, for a Service with a
//     sharing key, the addresses held under that key times their holders'
//     ports. Free addresses are never scanned.
//   - Release: O(log A). Stats, Assignment, ServiceCount: O(1) or O(log R).
//   - SetConfig: O(S + A log A + R log R).
//   - Memory: nothing per free address (an IPv6 /64 costs what an IPv4
//     /30 does); per Service one 128-byte record and a 16-byte map slot;
//     per address in use a 24-byte map slot; per run 48 bytes; per
//     sharing key a 64-byte map slot. BenchmarkMemoryPerService measures
//     about 200 bytes of heap per Service, 225 when pairs share addresses.
package allocator
