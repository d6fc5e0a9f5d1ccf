package allocation

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/model"
)

// Event reasons on configuration objects.
const (
	EventConfigInvalid = "InvalidConfiguration"
	EventConfigLoaded  = "ConfigurationLoaded"
)

// ConfigReconciler loads the configuration whenever any configuration
// object changes. A valid configuration replaces the one in force; an
// invalid one is reported on the offending objects and changes nothing.
type ConfigReconciler struct {
	Client    client.Client
	Recorder  record.EventRecorder
	Namespace string
	Metrics   *metrics.Controller
	Log       logr.Logger
	State     *State
	// Services is the Service reconciler, whose queue receives the
	// Services to revisit after a change.
	Services *ServiceReconciler

	// cmReported are the ConfigMap's errors last sent as events (one
	// reconcile runs at a time: the single key), so an unchanged error is
	// not sent again on every pass.
	cmReported string
}

var _ reconcile.Reconciler = (*ConfigReconciler)(nil)

// ConfigKey is the single key the config reconciler runs under: every
// configuration object maps to it.
var ConfigKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "herald-configuration"}}

// Reconcile rebuilds the configuration from the cache.
func (r *ConfigReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	res, err := k8s.LoadResources(ctx, r.Client, r.Namespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	cfg, buildErr := config.Build(res, config.Options{Namespace: r.Namespace})
	if buildErr != nil {
		r.Metrics.ConfigStale.Set(1)
		r.Log.Info("configuration rejected; the last good one stays in force", "error", buildErr.Error())
		return reconcile.Result{}, r.report(ctx, res, config.Errors(buildErr))
	}

	r.State.mu.Lock()
	first := r.State.cfg == nil
	displaced := r.State.alloc.SetConfig(cfg)
	r.State.cfg = cfg
	for _, d := range displaced {
		r.State.reasons[d.Service] = d.Reason
	}
	var all []model.ServiceKey
	if first {
		all = nil // every Service is enqueued below
	} else {
		all = r.State.pendingKeys()
	}
	r.State.mu.Unlock()

	r.Metrics.ConfigLoaded.Set(1)
	r.Metrics.ConfigStale.Set(0)
	r.Metrics.ConfigLastReload.Set(float64(time.Now().Unix()))
	r.Log.Info("configuration loaded", "pools", len(cfg.Pools), "displaced", len(displaced))

	if first {
		// Nothing could be decided without a configuration; revisit all.
		var list corev1.ServiceList
		if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return reconcile.Result{}, err
		}
		for i := range list.Items {
			all = append(all, model.ServiceKey{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name})
		}
	}
	for _, d := range displaced {
		all = append(all, d.Service)
	}
	r.Services.kick.kick(all...)
	r.Services.poolsChanged()
	return reconcile.Result{}, r.report(ctx, res, nil)
}

// report sets the Valid condition on every configuration object: False
// with the message on those named by errs, True on the others; and emits an
// event on each offending object (the ConfigMap for ConfigMap entries).
func (r *ConfigReconciler) report(ctx context.Context, res config.Resources, errs []config.ObjectError) error {
	byObj := map[string][]string{}
	for _, e := range errs {
		k := e.Kind + "/" + e.Name
		byObj[k] = append(byObj[k], e.Error())
	}
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for i := range res.Pools {
		note(r.setValid(ctx, &res.Pools[i], "IPAddressPool", res.Pools[i].Status.Conditions, byObj))
	}
	for i := range res.L2Advs {
		note(r.setValid(ctx, &res.L2Advs[i], "L2Advertisement", res.L2Advs[i].Status.Conditions, byObj))
	}
	for i := range res.BGPAdvs {
		note(r.setValid(ctx, &res.BGPAdvs[i], "BGPAdvertisement", res.BGPAdvs[i].Status.Conditions, byObj))
	}
	for i := range res.Peers {
		note(r.setValid(ctx, &res.Peers[i], "BGPPeer", res.Peers[i].Status.Conditions, byObj))
	}
	for i := range res.Communities {
		note(r.setValid(ctx, &res.Communities[i], "Community", res.Communities[i].Status.Conditions, byObj))
	}
	for i := range res.BFDProfiles {
		note(r.setValid(ctx, &res.BFDProfiles[i], "BFDProfile", res.BFDProfiles[i].Status.Conditions, byObj))
	}
	// Errors in objects converted from the ConfigMap, or not tied to any
	// object, are reported on the ConfigMap.
	if res.ConfigMap == nil {
		r.cmReported = ""
	} else {
		var msgs []string
		for _, e := range errs {
			if e.Kind == config.KindConfigMap {
				msgs = append(msgs, e.Error())
			}
		}
		reported := strings.Join(msgs, "\n")
		if reported == r.cmReported {
			msgs = nil
		}
		r.cmReported = reported
		if len(msgs) > 0 {
			cm := &corev1.ConfigMap{}
			cm.Namespace, cm.Name = res.ConfigMap.Namespace, res.ConfigMap.Name
			if err := r.Client.Get(ctx, client.ObjectKeyFromObject(cm), cm); err == nil {
				for _, m := range msgs {
					r.Recorder.Event(cm, corev1.EventTypeWarning, EventConfigInvalid, m)
				}
			}
		}
	}
	return firstErr
}

func (r *ConfigReconciler) setValid(ctx context.Context, obj client.Object, kind string, have []metav1.Condition, byObj map[string][]string) error {
	msgs := byObj[kind+"/"+obj.GetName()]
	cond := metav1.Condition{
		Type:               v1beta1.ConditionValid,
		Status:             metav1.ConditionTrue,
		Reason:             v1beta1.ReasonAccepted,
		Message:            "part of the configuration in force",
		ObservedGeneration: obj.GetGeneration(),
	}
	if len(msgs) > 0 {
		cond.Status = metav1.ConditionFalse
		cond.Reason = v1beta1.ReasonInvalid
		cond.Message = joinMessages(msgs)
	} else if len(byObj) > 0 {
		cond.Message = "valid, but the configuration was rejected because of other objects; the last good configuration stays in force"
		cond.Reason = v1beta1.ReasonBlockedByOther
	}
	if old := meta.FindStatusCondition(have, cond.Type); old != nil &&
		old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message &&
		old.ObservedGeneration == cond.ObservedGeneration {
		return nil
	}
	if len(msgs) > 0 {
		for _, m := range msgs {
			r.Recorder.Event(obj, corev1.EventTypeWarning, EventConfigInvalid, m)
		}
	}
	conds := append([]metav1.Condition(nil), have...)
	meta.SetStatusCondition(&conds, cond)
	data, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conds}})
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, obj.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("set condition on %s %s: %w", kind, obj.GetName(), client.IgnoreNotFound(err))
	}
	return nil
}

func joinMessages(msgs []string) string {
	out := ""
	for i, m := range msgs {
		if i > 0 {
			out += "; "
		}
		out += m
	}
	if len(out) > 32000 {
		out = out[:32000] + "..."
	}
	return out
}
