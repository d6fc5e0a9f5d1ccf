package speaker

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herald-lb/herald/internal/announce/arp"
	"github.com/herald-lb/herald/internal/metrics"
)

// TestReportConflict: a conflict on an address this node answers for
// warns every Service of the address (shared addresses have several) and
// is counted; one on an address it does not answer for is counted only.
func TestReportConflict(t *testing.T) {
	loop, _, _, rec, _ := loopFixture(t, lbService("a", "172.31.255.200"), lbService("b", "172.31.255.200"))
	loop.Metrics = metrics.NewL2(prometheus.NewRegistry())
	if _, err := loop.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	drainEvents(rec)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	loop.reportConflict("arp", arp.Conflict{IP: netip.MustParseAddr("172.31.255.200"), MAC: mac, Iface: "eth0"})
	got := drainEvents(rec)
	if len(got) != 2 {
		t.Fatalf("events %q, want one per Service of the address", got)
	}
	for _, e := range got {
		if !strings.HasPrefix(e, "Warning AddressConflict a host with MAC 02:00:00:00:00:09 on eth0 uses 172.31.255.200, which node n1 announces") {
			t.Errorf("event %q", e)
		}
	}
	loop.reportConflict("ndp", arp.Conflict{IP: netip.MustParseAddr("fd00:31::200"), Iface: "eth0", Probe: true})
	if got := drainEvents(rec); len(got) != 0 {
		t.Errorf("events %q for an address this node does not answer for", got)
	}
	for proto, want := range map[string]float64{"arp": 1, "ndp": 1} {
		if got := testutil.ToFloat64(loop.Metrics.AddressConflicts.WithLabelValues(proto)); got != want {
			t.Errorf("AddressConflicts{%s} = %v, want %v", proto, got, want)
		}
	}
}

func TestConflictMessage(t *testing.T) {
	ip := netip.MustParseAddr("fd00::5")
	for _, c := range []struct {
		in   arp.Conflict
		want string
	}{
		{arp.Conflict{IP: ip, Iface: "eth0", Probe: true}, "a host on eth0 asked whether fd00::5 is free, which node n1 announces, and was told it is in use"},
		{arp.Conflict{IP: ip, Iface: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, "a host with MAC 02:00:00:00:00:01 on eth0 uses fd00::5, which node n1 announces: clients may reach that host"},
	} {
		if got := ConflictMessage("n1", c.in); !strings.HasPrefix(got, c.want) {
			t.Errorf("ConflictMessage(%+v) = %q, want it to start %q", c.in, got, c.want)
		}
	}
}
