// Package allocation is the controller's acting half: it reconciles
// LoadBalancer Services against the allocator, loads the configuration from
// the API server, and keeps pool status and metrics current.
//
// Invariants:
//   - No Service is given a new address before every address already in
//     Service statuses has been learnt (priming), so a restart moves nothing.
//   - An invalid configuration never replaces the last good one; assignments
//     made under it stay in place.
//   - Allocator state is only touched under State.mu; API writes happen
//     outside the lock.
package allocation
