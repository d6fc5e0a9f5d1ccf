package allocation

import (
	"context"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/herald-lb/herald/internal/model"
)

// kicker lets one reconciler enqueue Services into the Service
// controller's queue (to retry pending Services when addresses free up).
type kicker struct {
	q atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
}

// source returns the controller-runtime source that hands kicker the queue.
func (k *kicker) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		k.q.Store(&q)
		return nil
	})
}

// kick enqueues keys; before the controller starts it does nothing (the
// initial list enqueues every Service anyway).
func (k *kicker) kick(keys ...model.ServiceKey) {
	qp := k.q.Load()
	if qp == nil {
		return
	}
	for _, key := range keys {
		(*qp).Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: key.Namespace, Name: key.Name}})
	}
}

// Once is a source that enqueues req once when the controller starts, so
// the reconciler runs even when there is no object to watch yet.
func Once(req reconcile.Request) source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(req)
		return nil
	})
}
