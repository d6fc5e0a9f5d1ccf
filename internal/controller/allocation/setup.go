package allocation

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrl "sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/internal/model"
)

// SetupWithManager registers the Service controller: it watches Services,
// and Namespaces whose labels change (pending Services there may now match
// a pool's namespace selector).
func (r *ServiceReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	nsToPending := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		r.State.mu.Lock()
		defer r.State.mu.Unlock()
		var out []reconcile.Request
		for k := range r.State.pending {
			if k.Namespace == o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: nsName(k)})
			}
		}
		return out
	})
	return builder.ControllerManagedBy(mgr).
		Named("service").
		For(&corev1.Service{}).
		Watches(&corev1.Namespace{}, nsToPending, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(r.kick.source()).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func nsName(k model.ServiceKey) types.NamespacedName {
	return types.NamespacedName{Namespace: k.Namespace, Name: k.Name}
}
