// Package config turns Herald's configuration objects (IPAddressPool,
// L2Advertisement, BGPAdvertisement, BGPPeer, Community, and the legacy
// MetalLB v0.12 ConfigMap through package legacy) into one validated
// model.Config.
//
// Build is the one validator. The controller calls it on everything it
// watches; the validating webhook calls it on the same with the object
// under review substituted in (Resources.With), so the two can never
// disagree. Errors extracts the per-object problems for status conditions.
// Build is pure: it reads only its arguments (no cluster state, no clock,
// no I/O), never logs, starts no goroutines and never modifies its input.
//
// Invariants:
//   - All or nothing: Build returns either a complete model and a nil
//     error, or a nil model and an *Error listing every problem found.
//   - Determinism: the model and the error text depend only on the set of
//     objects, not on their order in the input. Model slices are sorted by
//     name; errors are sorted by kind, object, field path and message.
//   - Every error names an object and, when it is about a field, the
//     field's path. Errors in what came from the ConfigMap name the
//     ConfigMap and the path in its data ("address-pools[0].addresses[1]"),
//     never the in-memory objects converted from it.
//   - A cross-object problem is reported on a definite object: a pool
//     overlap on both pools, a BGP conflict or a duplicate peer session on
//     the later object by name, a name defined both as an object and in the
//     ConfigMap on the object (which has a status to write).
//
// Decisions worth knowing:
//   - Addresses: CIDRs ("10.0.0.0/24"; host bits are masked, as MetalLB
//     does) or inclusive ranges "first-last" (spaces around the parts are
//     allowed). IPv4-mapped IPv6 forms ("::ffff:10.0.0.1") and zones are
//     rejected everywhere, so an address has exactly one spelling and one
//     family.
//   - An advertisement naming a pool that does not exist is not an
//     error (objects arrive in any order); the pool is just not covered.
//     An advertisement naming a BGPPeer that does not exist is an error.
//   - BGP timers are whole seconds (BGP carries seconds). holdTime defaults
//     to 90s and is 0 or 3s..65535s; keepaliveTime defaults to a third of
//     holdTime (rounded down to a second) and is 0 when holdTime is 0;
//     connectTime defaults to 10s, so a lost session is retried quickly.
//   - Community alias names may not contain ':', so an alias can never be
//     mistaken for a value.
//   - Objects outside Options.Namespace are reported and otherwise
//     ignored; an object defined twice is reported and the later copy (in
//     name, then content order) ignored, so one mistake is not reported
//     many times over.
package config
