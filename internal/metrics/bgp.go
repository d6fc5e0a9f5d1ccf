package metrics

import "github.com/prometheus/client_golang/prometheus"

// BGP holds the BGP speaker's metrics. The label peer is the BGPPeer
// name.
type BGP struct {
	// SessionUp is 1 while the session with the peer is Established.
	SessionUp *prometheus.GaugeVec
	// UpdatesSent counts BGP UPDATE messages sent to the peer.
	UpdatesSent *prometheus.CounterVec
	// AnnouncedPrefixes is the number of prefixes advertised to the peer.
	AnnouncedPrefixes *prometheus.GaugeVec
	// BFDSessionUp is 1 while the BFD session with the peer is Up (peers
	// with a BFDProfile only).
	BFDSessionUp *prometheus.GaugeVec
}

// NewBGP creates the BGP metrics and registers them in reg.
func NewBGP(reg prometheus.Registerer) *BGP {
	m := &BGP{
		SessionUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "bgp", Name: "session_up",
			Help: "1 while the BGP session with the peer is Established, else 0.",
		}, []string{"peer"}),
		UpdatesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bgp", Name: "updates_sent_total",
			Help: "BGP UPDATE messages sent to the peer.",
		}, []string{"peer"}),
		AnnouncedPrefixes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "bgp", Name: "announced_prefixes",
			Help: "Prefixes advertised to the peer.",
		}, []string{"peer"}),
		BFDSessionUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "bfd", Name: "session_up",
			Help: "1 while the BFD session with the BGP peer is Up, else 0 (peers with a BFDProfile only).",
		}, []string{"peer"}),
	}
	reg.MustRegister(m.SessionUp, m.UpdatesSent, m.AnnouncedPrefixes, m.BFDSessionUp)
	return m
}
