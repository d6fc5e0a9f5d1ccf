package allocation

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/allocator"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/internal/model"
)

// PoolStatusWriter keeps IPAddressPool status counts and the pool metrics
// current. Changes are coalesced: after a notification it waits Interval,
// then writes every pool whose counts differ from what it last wrote.
type PoolStatusWriter struct {
	Client    client.Client
	Namespace string
	Metrics   *metrics.Controller
	Log       logr.Logger
	State     *State
	Interval  time.Duration

	notify chan struct{}
	known  map[string]bool
}

var _ manager.LeaderElectionRunnable = (*PoolStatusWriter)(nil)

// NewPoolStatusWriter returns a writer; start it with Start.
func NewPoolStatusWriter(c client.Client, ns string, m *metrics.Controller, log logr.Logger, s *State) *PoolStatusWriter {
	return &PoolStatusWriter{
		Client: c, Namespace: ns, Metrics: m, Log: log, State: s,
		Interval: 500 * time.Millisecond,
		notify:   make(chan struct{}, 1),
		known:    map[string]bool{},
	}
}

// Notify tells the writer that pool usage may have changed. It never blocks.
func (w *PoolStatusWriter) Notify() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// NeedLeaderElection: only the leader writes status.
func (w *PoolStatusWriter) NeedLeaderElection() bool { return true }

// Start runs until ctx ends.
func (w *PoolStatusWriter) Start(ctx context.Context) error {
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	armed := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.notify:
			if !armed {
				timer.Reset(w.Interval)
				armed = true
			}
		case <-timer.C:
			armed = false
			if err := w.flush(ctx); err != nil {
				w.Log.Error(err, "writing pool status")
				timer.Reset(5 * w.Interval)
				armed = true
			}
		}
	}
}

func (w *PoolStatusWriter) flush(ctx context.Context) error {
	w.State.mu.Lock()
	cfg := w.State.cfg
	stats := map[string]allocator.PoolStats{}
	if cfg != nil {
		for _, name := range cfg.PoolOrder {
			stats[name] = w.State.alloc.Stats(name)
		}
	}
	w.State.mu.Unlock()
	if cfg == nil {
		return nil
	}

	for name := range w.known {
		if _, ok := stats[name]; !ok {
			for _, f := range []model.Family{model.IPv4, model.IPv6} {
				w.Metrics.PoolAddresses.DeleteLabelValues(name, f.String())
				w.Metrics.PoolInUse.DeleteLabelValues(name, f.String())
			}
			delete(w.known, name)
		}
	}
	var firstErr error
	for _, name := range cfg.PoolOrder {
		st := stats[name]
		w.known[name] = true
		v4, v6 := st.IPv4, st.IPv6
		w.Metrics.PoolAddresses.WithLabelValues(name, "IPv4").Set(gaugeValue(v4.Capacity))
		w.Metrics.PoolAddresses.WithLabelValues(name, "IPv6").Set(gaugeValue(v6.Capacity))
		w.Metrics.PoolInUse.WithLabelValues(name, "IPv4").Set(float64(v4.InUse))
		w.Metrics.PoolInUse.WithLabelValues(name, "IPv6").Set(float64(v6.InUse))

		if cfg.Pools[name].Source == model.SourceConfigMap {
			continue // no object to write status on
		}
		want := v1beta1.IPAddressPoolStatus{
			AssignedIPv4: clampInt64(v4.InUse), AvailableIPv4: clampInt64(v4.Capacity - v4.InUse),
			AssignedIPv6: clampInt64(v6.InUse), AvailableIPv6: clampInt64(v6.Capacity - v6.InUse),
		}
		// Compared with the object as it is (the cache's copy), not with
		// what was written last: a pool deleted and created again under
		// the same name starts with empty counts.
		pool := &v1beta1.IPAddressPool{}
		if err := w.Client.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: name}, pool); err != nil {
			if client.IgnoreNotFound(err) != nil && firstErr == nil {
				firstErr = fmt.Errorf("pool %q: %w", name, err)
			}
			continue
		}
		have := pool.Status
		if have.AssignedIPv4 == want.AssignedIPv4 && have.AvailableIPv4 == want.AvailableIPv4 &&
			have.AssignedIPv6 == want.AssignedIPv6 && have.AvailableIPv6 == want.AvailableIPv6 {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{
			"assignedIPv4": want.AssignedIPv4, "availableIPv4": want.AvailableIPv4,
			"assignedIPv6": want.AssignedIPv6, "availableIPv6": want.AvailableIPv6,
		}})
		if err := w.Client.Status().Patch(ctx, pool, client.RawPatch(types.MergePatchType, patch)); err != nil {
			if client.IgnoreNotFound(err) != nil && firstErr == nil {
				firstErr = fmt.Errorf("pool %q: %w", name, err)
			}
		}
	}
	return firstErr
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// gaugeValue keeps huge IPv6 capacities exact-ish in a float.
func gaugeValue(v uint64) float64 {
	const max = 1 << 53
	if v > max {
		return max
	}
	return float64(v)
}
