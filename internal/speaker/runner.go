package speaker

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Pass is a loop's whole recomputation. It returns how long until it must
// run again without any event (0: only on events), or an error, after
// which it is retried with a growing delay.
type Pass interface {
	Reconcile(ctx context.Context) (time.Duration, error)
}

// passKey is the single key a runner's queue holds: any number of events
// make one pass.
const passKey = "pass"

// runner runs a Pass from a delaying, rate-limited queue with one key, so
// passes never overlap, events during a pass make exactly one more, and a
// pass asked for after a delay runs at the earliest time asked.
type runner struct {
	pass Pass
	log  logr.Logger

	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[string]
}

func newRunner(p Pass, log logr.Logger) *runner { return &runner{pass: p, log: log} }

// kick asks for a pass at once.
func (r *runner) kick() { r.kickAfter(0) }

// kickAfter asks for a pass after d (sooner if asked meanwhile). Before
// Run, it does nothing: Run starts with a pass.
func (r *runner) kickAfter(d time.Duration) {
	r.mu.Lock()
	q := r.q
	r.mu.Unlock()
	if q != nil {
		q.AddAfter(passKey, d)
	}
}

// Run waits until synced returns true (the caches are filled), then runs
// a first pass and one per request until ctx ends.
func (r *runner) Run(ctx context.Context, synced func(context.Context) bool) error {
	if !synced(ctx) {
		return nil
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	r.mu.Lock()
	r.q = q
	r.mu.Unlock()
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	q.Add(passKey)
	for {
		key, shutdown := q.Get()
		if shutdown {
			return nil
		}
		again, err := r.pass.Reconcile(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Error(err, "pass failed; retrying")
			q.AddRateLimited(key)
		case again > 0:
			q.Forget(key)
			q.AddAfter(key, again)
		default:
			q.Forget(key)
		}
		q.Done(key)
	}
}

// onEvent returns informer handlers that call f for every add, update and
// delete.
func onEvent(f func()) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { f() },
		UpdateFunc: func(any, any) { f() },
		DeleteFunc: func(any) { f() },
	}
}
