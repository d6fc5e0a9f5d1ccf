// Package metrics defines Herald's Prometheus metrics. Constructors take the
// registry to register into; nothing is registered globally.
package metrics

import "github.com/prometheus/client_golang/prometheus"

const namespace = "herald"

// Controller holds the controller's metrics.
type Controller struct {
	// PoolAddresses is the number of assignable addresses per pool and
	// family (IPv6 capacities saturate at 2^53 so the float stays exact).
	PoolAddresses *prometheus.GaugeVec
	// PoolInUse is the number of addresses in use per pool and family.
	PoolInUse *prometheus.GaugeVec
	// ServicesAllocated is the number of Services holding addresses.
	ServicesAllocated prometheus.Gauge
	// AllocationFailures counts failed allocations by reason.
	AllocationFailures *prometheus.CounterVec
	// ConfigLoaded is 1 once a valid configuration is in force.
	ConfigLoaded prometheus.Gauge
	// ConfigStale is 1 while the newest configuration is invalid and an
	// older one is kept in force.
	ConfigStale prometheus.Gauge
	// ConfigLastReload is the Unix time of the last successful load.
	ConfigLastReload prometheus.Gauge
}

// NewController creates the controller metrics and registers them in reg.
func NewController(reg prometheus.Registerer) *Controller {
	m := &Controller{
		PoolAddresses: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pool", Name: "addresses_total",
			Help: "Number of assignable addresses in the pool, per family.",
		}, []string{"pool", "family"}),
		PoolInUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pool", Name: "addresses_in_use",
			Help: "Number of pool addresses assigned to Services, per family.",
		}, []string{"pool", "family"}),
		ServicesAllocated: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "controller", Name: "services_allocated",
			Help: "Number of LoadBalancer Services holding addresses.",
		}),
		AllocationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "controller", Name: "allocation_failures_total",
			Help: "Failed allocations, by reason.",
		}, []string{"reason"}),
		ConfigLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "config", Name: "loaded",
			Help: "1 when a valid configuration is in force.",
		}),
		ConfigStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "config", Name: "stale",
			Help: "1 when the newest configuration is invalid and an older one is kept in force.",
		}),
		ConfigLastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "config", Name: "last_reload_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
	}
	reg.MustRegister(m.PoolAddresses, m.PoolInUse, m.ServicesAllocated, m.AllocationFailures,
		m.ConfigLoaded, m.ConfigStale, m.ConfigLastReload)
	return m
}
