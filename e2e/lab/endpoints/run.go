package endpoints

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Writer keeps the managed EndpointSlices equal to Desired.
type Writer struct {
	cs  kubernetes.Interface
	log logr.Logger
	// Synced is closed once the caches are filled (for health checks).
	Synced chan struct{}
}

// NewWriter returns a writer; Run starts it.
func NewWriter(cs kubernetes.Interface, log logr.Logger) *Writer {
	return &Writer{cs: cs, log: log, Synced: make(chan struct{})}
}

// Run watches Services, Nodes and the managed slices and reconciles on
// every change and every resync period, until ctx ends.
func (w *Writer) Run(ctx context.Context, resync time.Duration) error {
	f := informers.NewSharedInformerFactory(w.cs, 0)
	managed := informers.NewSharedInformerFactoryWithOptions(w.cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelManagedBy + "=" + ManagedBy
		}))
	svcs := f.Core().V1().Services()
	nodes := f.Core().V1().Nodes()
	slices := managed.Discovery().V1().EndpointSlices()
	kick := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(kick) },
		UpdateFunc: func(any, any) { poke(kick) },
		DeleteFunc: func(any) { poke(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{svcs.Informer(), nodes.Informer(), slices.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	managed.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	for typ, ok := range managed.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	close(w.Synced)
	w.log.Info("endpoint writer running")
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		allSvcs, _ := svcs.Lister().List(labels.Everything())
		allNodes, _ := nodes.Lister().List(labels.Everything())
		have, _ := slices.Lister().List(labels.Everything())
		if err := w.reconcile(ctx, Desired(allSvcs, allNodes), have); err != nil {
			w.log.Error(err, "reconcile EndpointSlices (will retry)")
			// Retry soon even without an event.
			go func() {
				select {
				case <-time.After(time.Second):
					poke(kick)
				case <-ctx.Done():
				}
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-t.C:
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// reconcile creates, updates and deletes managed slices so they equal want.
func (w *Writer) reconcile(ctx context.Context, want, have []*discoveryv1.EndpointSlice) error {
	key := func(s *discoveryv1.EndpointSlice) string { return s.Namespace + "/" + s.Name }
	cur := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range have {
		cur[key(s)] = s
	}
	var errs []error
	for _, s := range want {
		c := cur[key(s)]
		delete(cur, key(s))
		api := w.cs.DiscoveryV1().EndpointSlices(s.Namespace)
		switch {
		case c == nil:
			if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("create %s: %w", key(s), err))
				continue
			}
			w.log.Info("created EndpointSlice", "slice", key(s), "endpoints", len(s.Endpoints))
		case !equality.Semantic.DeepEqual(c.Endpoints, s.Endpoints) || !equality.Semantic.DeepEqual(c.Ports, s.Ports) ||
			c.Labels[discoveryv1.LabelServiceName] != s.Labels[discoveryv1.LabelServiceName]:
			u := c.DeepCopy()
			u.Endpoints, u.Ports = s.Endpoints, s.Ports
			if u.Labels == nil {
				u.Labels = map[string]string{}
			}
			for k, v := range s.Labels {
				u.Labels[k] = v
			}
			if _, err := api.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("update %s: %w", key(s), err))
				continue
			}
			w.log.Info("updated EndpointSlice", "slice", key(s), "endpoints", len(s.Endpoints))
		}
	}
	for k, s := range cur {
		err := w.cs.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
			continue
		}
		w.log.Info("deleted EndpointSlice", "slice", k)
	}
	return errors.Join(errs...)
}
