package allocation

import (
	"sync"

	"github.com/herald-lb/herald/internal/allocator"
	"github.com/herald-lb/herald/internal/model"
)

// State is the allocation state shared by the config and Service
// reconcilers: the allocator, the configuration in force, and the Services
// waiting for an address.
type State struct {
	mu sync.Mutex
	// primeMu serialises priming (see ServiceReconciler.prime).
	primeMu sync.Mutex
	alloc   *allocator.Allocator
	cfg     *model.Config // last good configuration; nil until one loads
	primed  bool
	// pending are handled Services without an address (allocation failed);
	// they are retried whenever addresses free up or the config changes.
	pending map[model.ServiceKey]struct{}
	// reasons explain why a Service is being moved, for its next event.
	reasons map[model.ServiceKey]string
}

// NewState returns an empty state with no configuration.
func NewState() *State {
	return &State{
		alloc:   allocator.New(),
		pending: map[model.ServiceKey]struct{}{},
		reasons: map[model.ServiceKey]string{},
	}
}

// Config returns the configuration in force, or nil.
func (s *State) Config() *model.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// pendingKeys lists the pending Services. Caller holds s.mu.
func (s *State) pendingKeys() []model.ServiceKey {
	out := make([]model.ServiceKey, 0, len(s.pending))
	for k := range s.pending {
		out = append(out, k)
	}
	return out
}
