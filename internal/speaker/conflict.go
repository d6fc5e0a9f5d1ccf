package speaker

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/announce/arp"
)

// ReportConflict is the responders' OnConflict, for protocol ("arp",
// "ndp"): a report of another host claiming an address this node answers
// for becomes a Warning AddressConflict event on every Service of the
// address and a count in Metrics.AddressConflicts. It returns at once (the
// responders call it from their readers) and works in the background.
func (l *L2Loop) ReportConflict(protocol string, c arp.Conflict) {
	go l.reportConflict(protocol, c)
}

func (l *L2Loop) reportConflict(protocol string, c arp.Conflict) {
	if l.Metrics != nil {
		l.Metrics.AddressConflicts.WithLabelValues(protocol).Inc()
	}
	l.mu.Lock()
	services := slices.Clone(l.owned[c.IP].services)
	l.mu.Unlock()
	if l.Recorder == nil {
		return
	}
	msg := ConflictMessage(l.NodeName, c)
	for _, key := range services {
		if obj := serviceForEvent(context.Background(), l.Client, l.ServiceStore, key); obj != nil {
			l.Recorder.Event(obj, corev1.EventTypeWarning, "AddressConflict", msg)
		}
	}
}

// ConflictMessage says what a conflict report means for the Service.
func ConflictMessage(node string, c arp.Conflict) string {
	host := "a host"
	if c.MAC != nil {
		host = fmt.Sprintf("a host with MAC %s", c.MAC)
	}
	if c.Probe {
		return fmt.Sprintf("%s on %s asked whether %s is free, which node %s announces, and was told it is in use: "+
			"that host may be configured with the address; take it off the host or out of the pool", host, c.Iface, c.IP, node)
	}
	return fmt.Sprintf("%s on %s uses %s, which node %s announces: clients may reach that host instead of this Service; "+
		"take the address off the host or out of the pool", host, c.Iface, c.IP, node)
}
