package k8s

import "k8s.io/client-go/tools/record"

// eventCacheSize bounds the event correlator's caches (client-go keeps
// 4,096 entries in each of three, about 1 KB an entry once 10,000
// Services each got an event). Herald's events are one-offs per Service
// (an address assigned, a node announcing it): there is little to
// aggregate, so a small cache loses nothing.
const eventCacheSize = 256

// NewEventBroadcaster returns an event broadcaster with small correlator
// caches; the caller shuts it down.
func NewEventBroadcaster() record.EventBroadcaster {
	return record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: eventCacheSize}))
}
