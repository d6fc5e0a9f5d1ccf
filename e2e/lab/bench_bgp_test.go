package lab

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseMonitorLine(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02T15:04:05.000000", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		line string
		want routeEvent
		ok   bool
	}{
		{"[2026-12-07T01:10:25.889392] Deleted fd00:34:: nhid 311 proto bgp metric 20 pref medium",
			routeEvent{at: at("2026-12-07T01:10:25.889392"), dst: "fd00:34::", delete: true, nhid: "311"}, true},
		{"[2026-12-07T00:52:19.833775] 172.31.132.0 nhid 770 proto bgp metric 20 ",
			routeEvent{at: at("2026-12-07T00:52:19.833775"), dst: "172.31.132.0", nhid: "770"}, true},
		{"[2026-12-07T00:52:19.833775] 10.0.0.0/24 via 10.1.1.1 dev eth0",
			routeEvent{at: at("2026-12-07T00:52:19.833775"), dst: "10.0.0.0/24"}, true},
		{"[2026-12-07T00:52:19.833000] id 770 group 1/2 proto zebra", routeEvent{at: at("2026-12-07T00:52:19.833000")}, true},
		{"\tnexthop via 172.31.255.12 dev eth0 weight 1 ", routeEvent{}, false},
	} {
		got, ok := parseMonitorLine(tt.line)
		if ok != tt.ok || !cmp.Equal(got, tt.want, cmp.AllowUnexported(routeEvent{})) {
			t.Errorf("%q: %+v %v, want %+v %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRouteMissing(t *testing.T) {
	t0 := time.Unix(1800000000, 0)
	ev := func(ms float64, del bool) routeEvent {
		return routeEvent{at: t0.Add(time.Duration(ms * float64(time.Millisecond))), delete: del}
	}
	for _, tt := range []struct {
		name string
		evs  []routeEvent
		want time.Duration
	}{
		{"no event", nil, 0},
		{"replaced in place", []routeEvent{ev(0, false), ev(5, false)}, 0},
		{"deleted and added (an IPv6 replace)", []routeEvent{ev(0, true), ev(0.141, false)}, 141 * time.Microsecond},
		{"twice", []routeEvent{ev(0, true), ev(2, false), ev(10, true), ev(13, true), ev(14, false)}, 6 * time.Millisecond},
		{"deleted, not back", []routeEvent{ev(0, true), ev(3, true)}, 3 * time.Millisecond},
	} {
		if got := routeMissing(tt.evs); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
