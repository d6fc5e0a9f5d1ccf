package metrics

import "github.com/prometheus/client_golang/prometheus"

// L2 holds the layer-2 responders' metrics. Labels: protocol is "arp" or
// "ndp"; iface is the interface name.
type L2 struct {
	// RequestsReceived counts ARP requests / neighbor solicitations seen
	// for any address this node might answer for.
	RequestsReceived *prometheus.CounterVec
	// ResponsesSent counts ARP replies / neighbor advertisements sent in
	// answer to a request.
	ResponsesSent *prometheus.CounterVec
	// GratuitousSent counts gratuitous ARP packets / unsolicited neighbor
	// advertisements sent on taking an address over.
	GratuitousSent *prometheus.CounterVec
	// AnnouncedIPs is the number of addresses this node answers for.
	AnnouncedIPs *prometheus.GaugeVec
	// Members is the number of live speakers this one sees (itself
	// included), and Quorum whether that is enough to take addresses
	// over (1) or not (0).
	Members, Quorum prometheus.Gauge
	// KernelARPConflicts is the number of layer-2 addresses other nodes
	// own that this node's kernel answers ARP for by itself.
	KernelARPConflicts prometheus.Gauge
	// AddressConflicts counts other hosts seen claiming an address this
	// node answers for, once per run of their packets.
	AddressConflicts *prometheus.CounterVec
}

// NewL2 creates the layer-2 metrics and registers them in reg.
func NewL2(reg prometheus.Registerer) *L2 {
	labels := []string{"protocol", "iface"}
	m := &L2{
		RequestsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l2", Name: "requests_received_total",
			Help: "ARP requests and neighbor solicitations received for announced addresses.",
		}, labels),
		ResponsesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l2", Name: "responses_sent_total",
			Help: "ARP replies and neighbor advertisements sent in answer to requests.",
		}, labels),
		GratuitousSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l2", Name: "gratuitous_sent_total",
			Help: "Gratuitous ARP packets and unsolicited neighbor advertisements sent.",
		}, labels),
		AnnouncedIPs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "l2", Name: "announced_ips",
			Help: "Addresses this node answers for, per protocol.",
		}, []string{"protocol"}),
		Members: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "l2", Name: "members",
			Help: "Live speakers this speaker sees in the memberlist cluster, itself included.",
		}),
		Quorum: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "l2", Name: "quorum",
			Help: "1 when this speaker sees at least half of the known speakers and may take addresses over, else 0.",
		}),
		KernelARPConflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "l2", Name: "kernel_arp_conflicts",
			Help: "Layer-2 addresses other nodes own that this node's kernel answers ARP for by itself (arp_ignore; kube-proxy IPVS without strictARP).",
		}),
		AddressConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "l2", Name: "address_conflicts_total",
			Help: "Other hosts seen claiming an address this node answers for (using it, or probing for it), once per run of their packets.",
		}, []string{"protocol"}),
	}
	reg.MustRegister(m.RequestsReceived, m.ResponsesSent, m.GratuitousSent, m.AnnouncedIPs, m.Members, m.Quorum,
		m.KernelARPConflicts, m.AddressConflicts)
	return m
}
