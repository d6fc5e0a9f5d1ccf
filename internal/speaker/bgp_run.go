package speaker

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/announce/bgp"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/servicereq"
)

// setupBGP adds the BGP loop and its status writer to mgr and returns the
// BGP speaker. The caller runs the speaker with the process's context, not
// the manager's, so that SIGTERM closes the sessions at once. The GoBGP
// server starts with the first peer; without BGPPeers it costs nothing.
func setupBGP(mgr manager.Manager, opts Options, reg prometheus.Registerer, log logr.Logger) (*bgp.Speaker, error) {
	spk := bgp.New(bgp.Options{Log: log.WithName("bgp"), ListenPort: opts.BGPListenPort})
	status := NewBGPStatusWriter(mgr.GetClient(), mgr.GetEventRecorderFor("herald-speaker"), opts.Namespace, opts.NodeName,
		spk, metrics.NewBGP(reg), log.WithName("bgp-status"))
	if err := mgr.Add(status); err != nil {
		return nil, err
	}
	loop := &BGPLoop{
		Client:    mgr.GetClient(),
		Namespace: opts.Namespace,
		NodeName:  opts.NodeName,
		Class:     servicereq.Class{Name: opts.LBClass, Only: opts.LBClassOnly},
		Speaker:   spk,
		Status:    status,
		Log:       log.WithName("bgp"),
	}
	loop.ServiceStore = serviceStore(mgr)
	// Every change is a pass at once (a route waits for nothing); changes
	// during a pass make one more. Only this node's Node matters: every
	// node announces on its own.
	toLoop := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{LoopKey}
	})
	thisNode := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == opts.NodeName }))
	err := builder.ControllerManagedBy(mgr).
		Named("bgp").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&corev1.Service{}, toLoop).
		Watches(&discoveryv1.EndpointSlice{}, toLoop).
		Watches(&corev1.Node{}, toLoop, thisNode).
		Watches(&v1beta1.IPAddressPool{}, toLoop).
		Watches(&v1beta1.BGPAdvertisement{}, toLoop).
		Watches(&v1beta1.BGPPeer{}, toLoop).
		Watches(&v1beta1.Community{}, toLoop).
		Watches(&corev1.ConfigMap{}, toLoop).
		Watches(&corev1.Secret{}, toLoop). // BGPPeer passwordSecrets
		Complete(loop)
	if err != nil {
		return nil, fmt.Errorf("set up the BGP loop: %w", err)
	}
	return spk, nil
}
