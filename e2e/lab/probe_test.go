package lab

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArping(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []string
	}{
		{"none", "ARPING 172.31.255.201 from 172.31.255.100 eth0\nSent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n", nil},
		{"one twice", "ARPING 172.31.255.200 from 172.31.255.100 eth0\n" +
			"Unicast reply from 172.31.255.200 [02:48:4C:00:01:02]  0.576ms\n" +
			"Unicast reply from 172.31.255.200 [02:48:4C:00:01:02]  0.601ms\n", []string{"02:48:4c:00:01:02"}},
		{"two owners", "Unicast reply from 172.31.255.200 [02:48:4C:00:01:03]  0.590ms\n" +
			"Unicast reply from 172.31.255.200 [02:48:4C:00:01:02]  0.617ms\n", []string{"02:48:4c:00:01:02", "02:48:4c:00:01:03"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, ParseArping(tt.out)); d != "" {
				t.Errorf("ParseArping (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseNeigh(t *testing.T) {
	tests := []struct {
		name, out, want string
		wantErr         bool
	}{
		{"reachable", `[{"dst":"fd00:31::200","lladdr":"02:48:4C:00:01:02","state":["REACHABLE"]}]`, "02:48:4c:00:01:02", false},
		{"stale counts", `[{"dst":"fd00:31::200","lladdr":"02:48:4c:00:01:01","state":["STALE"]}]`, "02:48:4c:00:01:01", false},
		{"failed", `[{"dst":"fd00:31::150","state":["FAILED"]}]`, "", true},
		{"incomplete", `[{"dst":"fd00:31::155","state":["INCOMPLETE"]}]`, "", true},
		{"empty", `[]`, "", true},
		{"garbage", `no`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNeigh([]byte(tt.out))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseNeigh = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseBGPTable(t *testing.T) {
	// The shape of FRR 8.4's `show bgp ipv6 unicast json` with two
	// multipath routes learnt from nodes.
	out := `{"vrfId":0,"vrfName":"default","routerId":"172.31.255.1","localAS":64512,"routes":{
	 "fd00:33::10/128":[
	  {"valid":true,"multipath":true,"pathFrom":"external","peerId":"fd00:31::12","path":"64513","nexthops":[
	    {"ip":"fd00:31::12","afi":"ipv6","scope":"global","used":true},{"ip":"fe80::48:4cff:fe00:102","afi":"ipv6","scope":"link-local"}]},
	  {"valid":true,"bestpath":true,"multipath":true,"pathFrom":"external","peerId":"fd00:31::11","path":"64513","nexthops":[
	    {"ip":"fd00:31::11","afi":"ipv6","scope":"global","used":true}]}],
	 "fd00:33::11/128":[{"pathFrom":"external","peerId":"(unspec)","nexthops":[{"ip":"::","scope":"global"}]}]}}`
	got, err := ParseBGPTable([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]BGPPath{
		"fd00:33::10/128": {
			{Valid: true, Multipath: true, PeerID: "fd00:31::12", NextHops: []string{"fd00:31::12"}},
			{Valid: true, Best: true, Multipath: true, PeerID: "fd00:31::11", NextHops: []string{"fd00:31::11"}},
		},
		"fd00:33::11/128": {{PeerID: "(unspec)", NextHops: []string{"::"}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseBGPTable (-want +got):\n%s", d)
	}
}

func TestParseRouteNextHops(t *testing.T) {
	tests := []struct {
		name, out string
		want      []string
	}{
		{"ecmp", `[{"dst":"172.31.250.98","flags":[],"nexthops":[{"gateway":"172.31.255.12","dev":"eth0","weight":1},{"gateway":"172.31.255.11","dev":"eth0","weight":1}]}]`,
			[]string{"172.31.255.11", "172.31.255.12"}},
		{"single", `[{"dst":"172.31.250.98","gateway":"172.31.255.13","dev":"eth0","protocol":"bgp"}]`, []string{"172.31.255.13"}},
		{"none", `[]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRouteNextHops([]byte(tt.out))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestRangeAndURL(t *testing.T) {
	r := NetnsPlan.Main
	for _, s := range []string{"172.31.255.150", "172.31.255.169", "fd00:31::150", "fd00:31::169"} {
		if !r.Contains(netip.MustParseAddr(s)) {
			t.Errorf("%s not in %v", s, r.Addresses())
		}
	}
	for _, s := range []string{"172.31.255.149", "172.31.255.170", "fd00:31::16a", "172.31.254.150"} {
		if r.Contains(netip.MustParseAddr(s)) {
			t.Errorf("%s in %v", s, r.Addresses())
		}
	}
	for in, want := range map[string]string{"172.31.255.1": "http://172.31.255.1/", "fd00:31::1": "http://[fd00:31::1]/"} {
		if got := URL(netip.MustParseAddr(in), 80); got != want {
			t.Errorf("URL(%s, 80) = %s, want %s", in, got, want)
		}
	}
	if got := URL(netip.MustParseAddr("fd00:31::1"), 8080); got != "http://[fd00:31::1]:8080/" {
		t.Errorf("URL port 8080 = %s", got)
	}
}

func TestPlansDoNotOverlap(t *testing.T) {
	rs := map[string]Range{"main": NetnsPlan.Main, "gold": NetnsPlan.Gold, "spare": NetnsPlan.Spare, "bgp": NetnsPlan.BGP, "demo": NetnsPlan.Demo}
	fixed := []netip.Addr{RouterV4, RouterV6, APIV4, APIV6, L2ClientV4, L2ClientV6}
	for i := 1; i <= MaxNodes; i++ {
		n := nodePlan(i)
		fixed = append(fixed, n.IPv4, n.IPv6)
	}
	for name, r := range rs {
		for _, a := range fixed {
			if r.Contains(a) {
				t.Errorf("pool %s holds the host address %s", name, a)
			}
		}
		for other, o := range rs {
			if other != name && (r.Contains(o.V4First) || r.Contains(o.V6First)) {
				t.Errorf("pools %s and %s overlap", name, other)
			}
		}
	}
}
