// Package webhook is the controller's validating admission webhook for
// Herald's configuration kinds (IPAddressPool, L2Advertisement,
// BGPAdvertisement, BGPPeer, Community).
//
// It validates with config.Build, the function the controller itself runs,
// so the two cannot disagree: the configuration in herald-system is read
// live from the API server (not a cache, so an object created a moment ago
// counts), the object under review is substituted in (Resources.With) or
// taken out for a deletion (Resources.Without), and the result is compared
// with the configuration without the change.
//
// A change is rejected when it introduces an error (Review):
//   - on create or update, any error naming the object itself: the object
//     must be valid in the configuration it joins, whatever was wrong
//     before;
//   - on create, update or delete, any error on another object that the
//     configuration without the change does not have: a new pool that
//     overlaps an existing one, a deleted Community whose alias is in use,
//     a pool relabelled so that an advertisement's aggregationLength no
//     longer fits it.
//
// Errors that exist without the change are not the change's fault: they
// come back as warnings, and the change is allowed. An update that leaves
// spec and labels alone (annotations, finalizers, owner references) is
// always allowed, so an object the webhook would reject can still be
// annotated or have its finalizers removed. Objects outside herald-system
// are rejected on create and update (the configuration error names
// metadata.namespace) and ignored on delete. Deleting a pool whose
// addresses are in use is allowed: the controller re-assigns or clears the
// Services it served and says why in their events.
//
// The webhook is an early warning, not the line of defence: it is
// registered with failurePolicy Ignore, and a change it did not see (the
// controller down, two changes racing) is still validated by the
// controller, which reports it on the object's Valid condition and keeps
// the last good configuration in force.
package webhook
