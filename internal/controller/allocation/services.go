package allocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/allocator"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/model"
	"github.com/herald-lb/herald/internal/servicereq"
)

// Event reasons on Services.
const (
	EventIPAllocated      = "IPAllocated"
	EventAllocationFailed = "AllocationFailed"
	EventIPReleased       = "IPReleased"
)

// ServiceReconciler assigns addresses to LoadBalancer Services and writes
// them to status.loadBalancer.ingress and the ip-allocated-from-pool
// annotation.
type ServiceReconciler struct {
	Client   client.Client
	Recorder record.EventRecorder
	Class    servicereq.Class
	Metrics  *metrics.Controller
	Log      logr.Logger
	State    *State
	// PoolsChanged is told, without blocking, that pool usage changed.
	PoolsChanged func()

	kick kicker
}

var _ reconcile.Reconciler = (*ServiceReconciler)(nil)

var poolAnnotation = v1beta1.Annotation(v1beta1.AnnotationAllocatedFromPool)

// Reconcile brings one Service's assignment and status in line.
func (r *ServiceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := model.ServiceKey{Namespace: req.Namespace, Name: req.Name}
	log := r.Log.WithValues("service", key.String())

	ready, err := r.prime(ctx)
	if err != nil || !ready {
		// Without a configuration nothing can be decided; the config
		// reconciler enqueues every Service once one loads.
		return reconcile.Result{}, err
	}

	var svc corev1.Service
	if err := r.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.release(key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}

	if !r.Class.Handles(&svc) {
		released := r.release(key)
		if released || svc.Annotations[poolAnnotation] != "" {
			// Herald assigned these addresses: take them back off the
			// Service so no one keeps announcing them.
			if err := r.clear(ctx, &svc); err != nil {
				return reconcile.Result{}, err
			}
			if released {
				r.Recorder.Event(&svc, corev1.EventTypeNormal, EventIPReleased, "Service is no longer a LoadBalancer handled by Herald; its addresses were released")
			}
		}
		return reconcile.Result{}, nil
	}

	var ns corev1.Namespace
	var nsLabels map[string]string
	if err := r.Client.Get(ctx, types.NamespacedName{Name: svc.Namespace}, &ns); err == nil {
		nsLabels = ns.Labels
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}

	request, err := servicereq.FromService(&svc, nsLabels)
	if err != nil {
		// A malformed request never costs the Service what it has.
		r.fail(&svc, key, "InvalidRequest", err.Error())
		return reconcile.Result{}, nil
	}

	r.State.mu.Lock()
	prev, hadPrev := r.State.alloc.Assignment(key)
	asg, err := r.State.alloc.Assign(request)
	reason := r.State.reasons[key]
	delete(r.State.reasons, key)
	if err != nil {
		r.State.pending[key] = struct{}{}
	} else {
		delete(r.State.pending, key)
	}
	_, stillHas := r.State.alloc.Assignment(key)
	lost := hadPrev && (!stillHas || !sameIPs(prev.IPs, asg.IPs))
	var retry []model.ServiceKey
	if lost {
		retry = r.State.pendingKeys()
	}
	r.Metrics.ServicesAllocated.Set(float64(r.State.alloc.ServiceCount()))
	r.State.mu.Unlock()

	if lost {
		r.poolsChanged()
		r.kick.kick(retry...)
	}

	if err != nil {
		if len(svc.Status.LoadBalancer.Ingress) > 0 && !hadPrev {
			// Restart case: the status holds addresses Herald could not
			// take back (conflict, or pool gone). Clear them so they are
			// not announced twice.
			if cerr := r.clear(ctx, &svc); cerr != nil {
				return reconcile.Result{}, cerr
			}
		} else if hadPrev && !stillHas {
			if cerr := r.clear(ctx, &svc); cerr != nil {
				return reconcile.Result{}, cerr
			}
		}
		r.fail(&svc, key, failureReason(err), allocationMessage(err, reason))
		return reconcile.Result{}, nil
	}

	if !hadPrev || !sameIPs(prev.IPs, asg.IPs) {
		r.poolsChanged()
	}
	changed, err := r.write(ctx, &svc, asg)
	if err != nil {
		return reconcile.Result{}, err
	}
	if changed {
		msg := fmt.Sprintf("Assigned IP %s from pool %q", ipList(asg.IPs), asg.Pool)
		if reason != "" {
			msg += ": " + reason
		}
		r.Recorder.Event(&svc, corev1.EventTypeNormal, EventIPAllocated, msg)
		log.V(1).Info("assigned", "ip", ipList(asg.IPs), "pool", asg.Pool)
	}
	return reconcile.Result{}, nil
}

// prime learns every address already in Service statuses before anything
// new is assigned. It needs a configuration; it reports false until then.
func (r *ServiceReconciler) prime(ctx context.Context) (bool, error) {
	r.State.mu.Lock()
	done, haveCfg := r.State.primed, r.State.cfg != nil
	r.State.mu.Unlock()
	if done {
		return true, nil
	}
	if !haveCfg {
		return false, nil
	}
	// One worker primes; the others wait for it rather than each listing
	// every Service.
	r.State.primeMu.Lock()
	defer r.State.primeMu.Unlock()
	r.State.mu.Lock()
	done = r.State.primed
	r.State.mu.Unlock()
	if done {
		return true, nil
	}

	// Read-only walk over the cache: no copy of 10,000 Services.
	var list corev1.ServiceList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("list Services to learn existing assignments: %w", err)
	}
	// Oldest first: when two Services claim one address, the one that
	// has had it longest keeps it.
	items := make([]*corev1.Service, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].CreationTimestamp, items[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].Namespace+"/"+items[i].Name < items[j].Namespace+"/"+items[j].Name
	})
	nsLabels := map[string]map[string]string{}

	r.State.mu.Lock()
	defer r.State.mu.Unlock()
	if r.State.primed {
		return true, nil
	}
	learnt := 0
	for _, svc := range items {
		if !r.Class.Handles(svc) || len(svc.Status.LoadBalancer.Ingress) == 0 {
			continue
		}
		labels, ok := nsLabels[svc.Namespace]
		if !ok {
			var ns corev1.Namespace
			if err := r.Client.Get(ctx, types.NamespacedName{Name: svc.Namespace}, &ns); err == nil {
				labels = ns.Labels
			}
			nsLabels[svc.Namespace] = labels
		}
		// Keep exactly what the status shows, or nothing: anything new
		// waits for the normal reconcile, after every Service is learnt.
		// A Service whose request does not parse keeps its addresses too
		// (the normal reconcile leaves them to it), so they are reserved.
		req, _ := servicereq.FromService(svc, labels)
		held, ok := servicereq.Holding(req)
		if !ok {
			continue
		}
		if _, err := r.State.alloc.Assign(held); err == nil {
			learnt++
		}
	}
	r.State.primed = true
	r.Metrics.ServicesAllocated.Set(float64(r.State.alloc.ServiceCount()))
	r.Log.Info("learnt existing assignments", "services", learnt)
	r.poolsChanged()
	return true, nil
}

// release frees key's addresses and retries pending Services.
func (r *ServiceReconciler) release(key model.ServiceKey) bool {
	r.State.mu.Lock()
	released := r.State.alloc.Release(key)
	delete(r.State.pending, key)
	delete(r.State.reasons, key)
	var retry []model.ServiceKey
	if released {
		retry = r.State.pendingKeys()
	}
	r.Metrics.ServicesAllocated.Set(float64(r.State.alloc.ServiceCount()))
	r.State.mu.Unlock()
	if released {
		r.poolsChanged()
		r.kick.kick(retry...)
	}
	return released
}

func (r *ServiceReconciler) poolsChanged() {
	if r.PoolsChanged != nil {
		r.PoolsChanged()
	}
}

func (r *ServiceReconciler) fail(svc *corev1.Service, key model.ServiceKey, reason, msg string) {
	r.Metrics.AllocationFailures.WithLabelValues(reason).Inc()
	r.Recorder.Event(svc, corev1.EventTypeWarning, EventAllocationFailed, msg)
	r.Log.Info("allocation failed", "service", key.String(), "reason", msg)
}

// write puts asg into the Service's status and annotation when they differ.
// One write carries both: the API server takes metadata changes through the
// status subresource of a Service (it resets only the spec), and one write
// instead of two leaves the API server free to tell the speakers at once.
// Should it drop the annotation (the object it returns lacks it), a
// separate patch writes it.
func (r *ServiceReconciler) write(ctx context.Context, svc *corev1.Service, asg model.Assignment) (bool, error) {
	want := make([]corev1.LoadBalancerIngress, 0, len(asg.IPs))
	vip := corev1.LoadBalancerIPModeVIP
	for _, ip := range asg.IPs {
		want = append(want, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &vip})
	}
	statusDiffers := !ingressEqual(svc.Status.LoadBalancer.Ingress, want)
	annotate := svc.Annotations[poolAnnotation] != asg.Pool
	if !statusDiffers && !annotate {
		return false, nil
	}
	if statusDiffers {
		patch := map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": want}}}
		if annotate {
			patch["metadata"] = map[string]any{"annotations": map[string]any{poolAnnotation: asg.Pool}}
		}
		written, err := r.mergePatch(ctx, svc, patch, true)
		if err != nil {
			return false, fmt.Errorf("write status of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		annotate = written.Annotations[poolAnnotation] != asg.Pool
	}
	if annotate {
		patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{poolAnnotation: asg.Pool}}}
		if _, err := r.mergePatch(ctx, svc, patch, false); err != nil {
			return false, fmt.Errorf("annotate %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return true, nil
}

// clear removes Herald's addresses and annotation from the Service.
func (r *ServiceReconciler) clear(ctx context.Context, svc *corev1.Service) error {
	if len(svc.Status.LoadBalancer.Ingress) > 0 {
		patch := map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": nil}}}
		if _, err := r.mergePatch(ctx, svc, patch, true); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("clear status of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	if _, ok := svc.Annotations[poolAnnotation]; ok {
		patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{poolAnnotation: nil}}}
		if _, err := r.mergePatch(ctx, svc, patch, false); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove annotation of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return nil
}

// mergePatch patches svc (its status subresource when status is set) and
// returns the object as the API server wrote it.
func (r *ServiceReconciler) mergePatch(ctx context.Context, svc *corev1.Service, patch map[string]any, status bool) (*corev1.Service, error) {
	data, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	p := client.RawPatch(types.MergePatchType, data)
	// Patch a copy: the cached object must not be changed.
	obj := &corev1.Service{}
	obj.Namespace, obj.Name = svc.Namespace, svc.Name
	if status {
		err = r.Client.Status().Patch(ctx, obj, p)
	} else {
		err = r.Client.Patch(ctx, obj, p)
	}
	return obj, err
}

func ingressEqual(have, want []corev1.LoadBalancerIngress) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		if have[i].IP != want[i].IP || have[i].Hostname != "" || len(have[i].Ports) > 0 {
			return false
		}
	}
	return true
}

func sameIPs(a, b []netip.Addr) bool { return slices.Equal(a, b) }

func ipList(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func failureReason(err error) string {
	switch {
	case errors.Is(err, allocator.ErrPoolExhausted):
		return "PoolExhausted"
	case errors.Is(err, allocator.ErrIPInUse):
		return "IPInUse"
	case errors.Is(err, allocator.ErrNotInPool):
		return "NotInPool"
	case errors.Is(err, allocator.ErrUnknownPool):
		return "UnknownPool"
	case errors.Is(err, allocator.ErrPoolNotAllowed):
		return "PoolNotAllowed"
	case errors.Is(err, allocator.ErrFamily):
		return "IPFamily"
	case errors.Is(err, allocator.ErrNoPool):
		return "NoPool"
	}
	return "Other"
}

func allocationMessage(err error, reason string) string {
	msg := "Failed to allocate IP: " + err.Error()
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return msg
}
