package memberlist

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/election"
)

func TestNewValidates(t *testing.T) {
	ok := Options{NodeName: "n"}
	with := func(f func(*Options)) Options {
		o := ok
		f(&o)
		return o
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", ok, ""},
		{"everything set", Options{
			NodeName: "n", BindAddr: "10.0.0.1", BindPort: 7000, AdvertiseAddr: "192.0.2.1",
			Join: []string{"10.0.0.2:7946", "[2001:db8::1]:7946", "node-3:7946"}, SecretKey: make([]byte, 32),
			ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, SuspicionMult: 4,
			GossipInterval: 200 * time.Millisecond, PushPullInterval: 30 * time.Second,
			ReconnectInterval: time.Minute, LeaveTimeout: 5 * time.Second,
		}, ""},
		{"free port", with(func(o *Options) { o.BindPort = -1 }), ""},
		{"no node name", Options{}, "node name is required"},
		{"node name too long", with(func(o *Options) { o.NodeName = strings.Repeat("x", 1025) }), "longer than 1024"},
		{"bind address", with(func(o *Options) { o.BindAddr = "localhost" }), `bind address "localhost"`},
		{"bind port", with(func(o *Options) { o.BindPort = 70000 }), "bind port 70000"},
		{"negative bind port", with(func(o *Options) { o.BindPort = -2 }), "bind port -2"},
		{"advertise address", with(func(o *Options) { o.AdvertiseAddr = "10.0.0" }), `advertise address "10.0.0"`},
		{"join without port", with(func(o *Options) { o.Join = []string{"10.0.0.2"} }), `join address "10.0.0.2"`},
		{"join without host", with(func(o *Options) { o.Join = []string{":7946"} }), `join address ":7946"`},
		{"join port", with(func(o *Options) { o.Join = []string{"10.0.0.2:0"} }), "invalid port"},
		{"join port name", with(func(o *Options) { o.Join = []string{"10.0.0.2:gossip"} }), "invalid port"},
		{"key length", with(func(o *Options) { o.SecretKey = make([]byte, 10) }), "got 10"},
		{"negative interval", with(func(o *Options) { o.GossipInterval = -time.Second }), "gossip interval -1s is negative"},
		{"timeout not below interval", with(func(o *Options) {
			o.ProbeInterval, o.ProbeTimeout = time.Second, time.Second
		}), "probe timeout 1s must be shorter"},
		{"timeout above the default interval", with(func(o *Options) { o.ProbeTimeout = time.Second }), "must be shorter than the probe interval 200ms"},
		{"suspicion", with(func(o *Options) { o.SuspicionMult = -1 }), "suspicion multiplier -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.opts)
			if tc.wantErr == "" {
				if err != nil || m == nil {
					t.Fatalf("New() = %v, %v; want a Membership", m, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New() error = %v, want ErrInvalidOptions mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got, err := Options{NodeName: "n"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		NodeName: "n", BindAddr: "0.0.0.0", BindPort: 7946,
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, SuspicionMult: 2,
		GossipInterval: 50 * time.Millisecond, PushPullInterval: 15 * time.Second,
		ReconnectInterval: 3 * time.Second, LeaveTimeout: time.Second,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Options{}, "Log")); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
}

func TestNewStartsNothing(t *testing.T) {
	m, err := New(Options{NodeName: "n", Join: []string{"192.0.2.1:7946"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.list.Load() != nil {
		t.Error("New created memberlist")
	}
	if diff := cmp.Diff([]string{"n"}, m.Members()); diff != "" {
		t.Errorf("members before Run (-want +got):\n%s", diff)
	}
	if m.Synced() {
		t.Error("synced before Run")
	}
	if diff := cmp.Diff([]string{"n"}, m.Known()); diff != "" {
		t.Errorf("known before Run (-want +got):\n%s", diff)
	}
	m.SetClaims(at(t1, addrs(1, 2)...))
	if diff := cmp.Diff(map[string][]election.Claim{"n": at(t1, addrs(1, 2)...)}, m.Claims(), msgOpts); diff != "" {
		t.Errorf("claims before Run (-want +got):\n%s", diff)
	}
}
