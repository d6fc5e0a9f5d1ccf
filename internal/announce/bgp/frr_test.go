package bgp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/herald-lb/herald/internal/announce/internal/nstest"
)

// The helpers of the FRR tests: FRR (zebra and bgpd) started in a test
// namespace as the lab notes show, and the speaker as a helper process in
// a node namespace, driven over stdin.

func TestMain(m *testing.M) {
	os.Exit(nstest.Main(m, map[string]func() int{"bgp-speaker": speakerHelper}))
}

// requireFRR skips (or fails under HERALD_REQUIRE_NETNS=1) unless the
// test runs as root with FRR installed.
func requireFRR(t *testing.T) {
	t.Helper()
	nstest.Require(t, "vtysh", "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "sysctl")
}

// frr is FRR running in a namespace.
type frr struct{ *nstest.FRR }

// startFRR starts zebra and bgpd in ns with bgpd.conf, waits until bgpd
// answers on its vty, and stops them when the test ends. extra are extra
// bgpd arguments (such as "-p", "1179").
func startFRR(t *testing.T, ns *nstest.NS, bgpdConf string, extra ...string) *frr {
	t.Helper()
	return &frr{nstest.StartFRR(t, ns, nstest.FRROptions{
		Daemon: "bgpd", Conf: bgpdConf, ZebraArgs: []string{"-s", "90000000"}, DaemonArgs: extra,
		Ready: "show bgp summary json",
		Dump:  []string{"show bgp summary", "show bgp ipv4 unicast", "show bgp ipv6 unicast", "show ip route", "show ipv6 route"},
	})}
}

func (f *frr) try(command string) (string, error) { return f.Vtysh(command) }

// json runs a vtysh command ending in "json" and decodes its output.
func (f *frr) json(t *testing.T, command string, v any) {
	t.Helper()
	out, err := f.try(command)
	if err != nil {
		t.Fatalf("vtysh %q: %v\n%s", command, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("vtysh %q: %v\n%s", command, err, out)
	}
}

// frrNeighbor is what the tests read of `show bgp neighbors X json`.
type frrNeighbor struct {
	State            string `json:"bgpState"`
	EstablishedCount int    `json:"connectionsEstablished"`
	DroppedCount     int    `json:"connectionsDropped"`
	LastReset        string `json:"lastResetDueTo"`
	LastNotification string `json:"lastNotificationReason"`
	HoldTimeMsecs    int    `json:"bgpTimerHoldTimeMsecs"`
	RemoteAS         uint32 `json:"remoteAs"`
	LocalAS          uint32 `json:"localAs"`
	GracefulRestart  string `json:"gracefulRestartInfo"`
	Capabilities     struct {
		GracefulRestart string `json:"gracefulRestart"`
	} `json:"neighborCapabilities"`
}

func (f *frr) neighbor(t *testing.T, addr string) frrNeighbor {
	t.Helper()
	var all map[string]json.RawMessage
	f.json(t, "show bgp neighbors "+addr+" json", &all)
	var n frrNeighbor
	if raw, ok := all[addr]; ok {
		_ = json.Unmarshal(raw, &n)
	}
	return n
}

// waitEstablished waits until FRR sees each neighbor Established.
func (f *frr) waitEstablished(t *testing.T, d time.Duration, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		var n frrNeighbor
		if !nstest.Eventually(d, func() bool { n = f.neighbor(t, a); return n.State == "Established" }) {
			t.Fatalf("FRR's session with %s is %q after %s, want Established", a, n.State, d)
		}
	}
}

// bgpPath is one path of a prefix in FRR's table.
type bgpPath struct {
	Valid     bool   `json:"valid"`
	Stale     bool   `json:"stale"`
	LocalPref uint32 `json:"locPrf"`
	Community struct {
		List []string `json:"list"`
	} `json:"community"`
	LargeCommunity struct {
		List []string `json:"list"`
	} `json:"largeCommunity"`
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
	NextHops []struct {
		IP    string `json:"ip"`
		Scope string `json:"scope"`
	} `json:"nexthops"`
}

// path is a path reduced to what the tests compare.
type path struct {
	From        string // the neighbor it came from
	NextHop     string // global next hop
	Communities string // standard, then large, space separated
	LocalPref   uint32 // 0 when FRR shows none
	Stale       bool   // kept by graceful restart, not yet sent again
}

// paths returns FRR's valid paths of prefix, sorted by neighbor.
func (f *frr) paths(t *testing.T, prefix string) []path {
	t.Helper()
	fam := "ipv4"
	if strings.Contains(prefix, ":") {
		fam = "ipv6"
	}
	var doc struct {
		Paths []bgpPath `json:"paths"`
	}
	f.json(t, "show bgp "+fam+" unicast "+prefix+" json", &doc)
	var out []path
	for _, p := range doc.Paths {
		if !p.Valid {
			continue
		}
		x := path{From: p.Peer.PeerID, LocalPref: p.LocalPref, Stale: p.Stale,
			Communities: strings.Join(append(p.Community.List, prefixEach("large:", p.LargeCommunity.List)...), " ")}
		for _, nh := range p.NextHops {
			if nh.Scope != "link-local" {
				x.NextHop = nh.IP
			}
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out
}

func prefixEach(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}

// kernelNextHops returns the gateways of the kernel's route for prefix in
// ns (several for ECMP), sorted; none when there is no route.
func kernelNextHops(t *testing.T, ns *nstest.NS, prefix string) []string {
	t.Helper()
	fam := "-4"
	if strings.Contains(prefix, ":") {
		fam = "-6"
	}
	out := ns.Run(t, "ip", "-j", fam, "route", "show", prefix)
	var routes []struct {
		Gateway  string `json:"gateway"`
		NextHops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("ip route: %v: %s", err, out)
	}
	var gws []string
	for _, r := range routes {
		if r.Gateway != "" {
			gws = append(gws, r.Gateway)
		}
		for _, nh := range r.NextHops {
			gws = append(gws, nh.Gateway)
		}
	}
	sort.Strings(gws)
	return gws
}

// speaker is the adapter running in a node namespace (the helper below).
type speaker struct {
	h *nstest.Helper
}

func startSpeaker(t *testing.T, ns *nstest.NS) *speaker {
	return &speaker{h: ns.StartHelper(t, "bgp-speaker")}
}

// reconcile sends a whole desired state.
func (s *speaker) reconcile(t *testing.T, d Desired) {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	s.h.Do("reconcile " + string(b))
}

func (s *speaker) sessions(t *testing.T) []SessionState {
	t.Helper()
	var out []SessionState
	if err := json.Unmarshal([]byte(s.h.Do("sessions")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitSession waits until the speaker reports peer in state want.
func (s *speaker) waitSession(t *testing.T, peer string, want State, d time.Duration) SessionState {
	t.Helper()
	var got SessionState
	ok := nstest.Eventually(d, func() bool {
		for _, st := range s.sessions(t) {
			if st.Peer == peer {
				got = st
				return st.State == want
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("session %s: %+v after %s, want %s", peer, got, d, want)
	}
	return got
}

// stop ends the speaker's Run (graceful shutdown) and returns how long it
// took.
func (s *speaker) stop(t *testing.T) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s.h.Do("stop"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// speakerHelper runs a Speaker listening on port 179 and takes:
//
//	reconcile JSON   Reconcile with that Desired
//	sessions         the Sessions as JSON
//	restart ADDR WHY Restart
//	reconnect ADDR   Reconnect
//	close-all        from now on the shutdown closes every session (CloseAll)
//	stop             end Run; reply how long the shutdown took
//
// It logs to stderr; it stops when stdin ends, and its exit closes the
// sessions the shutdown left open.
func speakerHelper() int {
	log := funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 1})
	var closeAll atomic.Bool
	s := New(Options{Log: log, ListenPort: 179, RefuseRetry: 3 * time.Second, CloseAll: closeAll.Load})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	stopped := false
	nstest.Serve(func(words []string) (string, error) {
		switch words[0] {
		case "reconcile":
			var d Desired
			if err := json.Unmarshal([]byte(strings.Join(words[1:], " ")), &d); err != nil {
				return "", err
			}
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
			defer rcancel()
			return "", s.Reconcile(rctx, d)
		case "sessions":
			b, err := json.Marshal(s.Sessions())
			return string(b), err
		case "reconnect":
			a, err := netip.ParseAddr(words[1])
			if err != nil {
				return "", err
			}
			return "", s.Reconnect(ctx, a)
		case "restart":
			a, err := netip.ParseAddr(words[1])
			if err != nil {
				return "", err
			}
			return "", s.Restart(ctx, a, strings.Join(words[2:], " "))
		case "close-all":
			closeAll.Store(true)
			return "", nil
		case "stop":
			t0 := time.Now()
			cancel()
			select {
			case err := <-runDone:
				stopped = true
				if err != nil {
					return "", err
				}
				return time.Since(t0).String(), nil
			case <-time.After(10 * time.Second):
				return "", errors.New("Run did not return 10s after its context ended")
			}
		}
		return "", fmt.Errorf("unknown command %q", words[0])
	})
	if stopped {
		return 0 // the exit closes what the shutdown left open
	}
	cancel() // stdin ended: shut down gracefully, as on SIGTERM
	select {
	case <-runDone:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "Run did not return 10s after its context ended")
		return 1
	}
	return 0
}

// exit ends the helper process (after stop: its exit closes the sessions
// the shutdown left open, as the speaker's does).
func (s *speaker) exit() { s.h.Stop() }

// killHelper kills the speaker helper process (SIGKILL: the kernel closes
// its connections, no NOTIFICATION).
func (s *speaker) kill() { s.h.Signal(syscall.SIGKILL) }
