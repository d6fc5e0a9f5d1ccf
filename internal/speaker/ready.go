package speaker

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// ReadyInput is what decides whether a speaker is ready (Ready).
type ReadyInput struct {
	// L2Passed: the layer-2 loop has made a full pass (the API caches
	// and, with memberlist, the membership were synced first).
	L2Passed bool
	// BGPPassed: the BGP status writer has the sessions this node
	// should have (the BGP loop made its first pass).
	BGPPassed bool
	// BGPWaiting are those sessions (peer names) not established yet,
	// less those whose configuration failed (they cannot come up).
	BGPWaiting []string
	// Elapsed is the time since the speaker started; after BGPWait it
	// no longer waits for sessions: a router that is down must not hold
	// a rollout for ever.
	Elapsed, BGPWait time.Duration
}

// Ready reports whether a speaker has done what its node needs before the
// next node's speaker may restart (a DaemonSet rollout waits for each pod
// to be ready): its first layer-2 pass, its first BGP pass, and its BGP
// sessions established (at most BGPWait after its start). When not ready
// it says what it waits for.
func Ready(in ReadyInput) (bool, string) {
	var waiting []string
	if !in.L2Passed {
		waiting = append(waiting, "the first layer-2 pass (API caches, memberlist)")
	}
	if !in.BGPPassed {
		waiting = append(waiting, "the first BGP pass")
	}
	if len(in.BGPWaiting) > 0 && in.Elapsed < in.BGPWait {
		peers := slices.Clone(in.BGPWaiting)
		slices.Sort(peers)
		waiting = append(waiting, fmt.Sprintf("BGP sessions with %s (at most %s after the start)", strings.Join(peers, ", "), in.BGPWait))
	}
	if len(waiting) > 0 {
		return false, "waiting for " + strings.Join(waiting, "; ")
	}
	return true, "ready"
}

// Readiness answers the speaker's /readyz from the loops' state (Ready).
// Once ready it stays ready: it paces rollouts, and a session that drops
// later is the status objects' and the metrics' business, not a reason to
// take the Pod out of its DaemonSet's count.
type Readiness struct {
	Start   time.Time
	BGPWait time.Duration
	// L2Passed, BGPSessions: the loops' state (L2Loop.Passed,
	// BGPStatusWriter.Waiting).
	L2Passed    func() bool
	BGPSessions func() (known bool, waiting []string)

	ready atomic.Bool
}

// DefaultReadyBGPWait is how long after its start a speaker waits for its
// BGP sessions before it says it is ready anyway.
const DefaultReadyBGPWait = 30 * time.Second

// Check is the readiness probe's answer.
func (r *Readiness) Check() (bool, string) {
	if r.ready.Load() {
		return true, "ready"
	}
	known, waiting := r.BGPSessions()
	ok, why := Ready(ReadyInput{
		L2Passed: r.L2Passed(), BGPPassed: known, BGPWaiting: waiting,
		Elapsed: time.Since(r.Start), BGPWait: r.BGPWait,
	})
	if ok {
		r.ready.Store(true)
	}
	return ok, why
}
