package allocator

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error Assign returns wraps exactly one of them,
// so the caller can pick an event reason with errors.Is; the message
// itself is written for a human and names the pool, address or Service
// at fault.
var (
	// ErrUnknownPool: the requested pool does not exist.
	ErrUnknownPool = errors.New("unknown pool")
	// ErrPoolNotAllowed: the pool's serviceAllocation does not serve the
	// Service (namespace or Service labels).
	ErrPoolNotAllowed = errors.New("pool does not serve the service")
	// ErrNotInPool: a requested address is in no pool, or not in the
	// requested pool.
	ErrNotInPool = errors.New("address not in pool")
	// ErrIPInUse: a requested address is held by another Service and the
	// sharing rules forbid sharing it.
	ErrIPInUse = errors.New("address in use")
	// ErrPoolExhausted: the pool (or every pool tried) has no free
	// address of a wanted family.
	ErrPoolExhausted = errors.New("pool exhausted")
	// ErrNoPool: no pool may serve the Service at all (none has
	// autoAssign, or their serviceAllocations exclude it).
	ErrNoPool = errors.New("no pool")
	// ErrFamily: the request's IP families cannot be met: contradictory
	// request, or a pool lacking a required family.
	ErrFamily = errors.New("ip family mismatch")
)

// allocError is a human message that wraps one sentinel.
type allocError struct {
	kind error
	msg  string
}

func (e *allocError) Error() string { return e.msg }
func (e *allocError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &allocError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
