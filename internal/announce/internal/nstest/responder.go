package nstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/announce/internal/responder"
	"github.com/herald-lb/herald/internal/metrics"
)

// Responder is what ResponderHelper drives: arp.Responder or
// ndp.Responder.
type Responder interface {
	Run(ctx context.Context) error
	Reconcile(desired map[string][]netip.Addr) error
}

// ResponderHelper returns a helper (for Main) that runs the responder made
// by newResponder and takes these commands:
//
//	reconcile [IFACE=ADDR,ADDR...]...  Reconcile with that whole state
//	metrics                            "requests=N responses=N gratuitous=N announced=N"
//	wait                               wait up to 10s for Run to return; reply "permission=BOOL ERROR"
//	conflicts                          the conflicts reported so far, "IP MAC IFACE probe=BOOL" joined by "; "
//
// Run starts at once and is cancelled when stdin ends. It logs to stderr.
func ResponderHelper(newResponder func(log logr.Logger, m *metrics.L2, onConflict func(responder.Conflict)) Responder) func() int {
	return func() int {
		log := funcr.New(func(prefix, args string) {
			fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), prefix, args)
		}, funcr.Options{Verbosity: 1})
		reg := prometheus.NewRegistry()
		var mu sync.Mutex
		var conflicts []string
		r := newResponder(log, metrics.NewL2(reg), func(c responder.Conflict) {
			mu.Lock()
			defer mu.Unlock()
			conflicts = append(conflicts, fmt.Sprintf("%s %s %s probe=%t", c.IP, c.MAC, c.Iface, c.Probe))
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var runErr error
		runDone := make(chan struct{})
		go func() { runErr = r.Run(ctx); close(runDone) }()

		Serve(func(words []string) (string, error) {
			switch words[0] {
			case "reconcile":
				desired, err := parseDesired(words[1:])
				if err != nil {
					return "", err
				}
				return "", r.Reconcile(desired)
			case "metrics":
				return gather(reg)
			case "conflicts":
				mu.Lock()
				defer mu.Unlock()
				return strings.Join(conflicts, "; "), nil
			case "wait":
				select {
				case <-runDone:
					if runErr == nil {
						return "permission=false <nil>", nil
					}
					return fmt.Sprintf("permission=%t %v", errors.Is(runErr, responder.ErrPermission), runErr), nil
				case <-time.After(10 * time.Second):
					return "", errors.New("Run still running after 10s")
				}
			}
			return "", fmt.Errorf("unknown command %q", words[0])
		})
		cancel()
		select {
		case <-runDone:
			if runErr != nil {
				fmt.Fprintln(os.Stderr, "run:", runErr)
				return 1
			}
		case <-time.After(5 * time.Second):
			fmt.Fprintln(os.Stderr, "Run did not return 5s after its context ended")
			return 1
		}
		return 0
	}
}

func parseDesired(args []string) (map[string][]netip.Addr, error) {
	desired := map[string][]netip.Addr{}
	for _, arg := range args {
		name, list, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("want IFACE=ADDR,...: %q", arg)
		}
		desired[name] = []netip.Addr{}
		for _, s := range strings.Split(list, ",") {
			if s == "" {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			desired[name] = append(desired[name], a)
		}
	}
	return desired, nil
}

// gather sums the layer-2 metrics over their labels.
func gather(reg *prometheus.Registry) (string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	sums := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sums[mf.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sums[mf.GetName()] += m.GetGauge().GetValue()
			}
		}
	}
	return fmt.Sprintf("requests=%d responses=%d gratuitous=%d announced=%d",
		int(sums["herald_l2_requests_received_total"]), int(sums["herald_l2_responses_sent_total"]),
		int(sums["herald_l2_gratuitous_sent_total"]), int(sums["herald_l2_announced_ips"])), nil
}

// Metrics is the parsed reply of the metrics command.
type Metrics struct {
	Requests, Responses, Gratuitous, Announced int
}

// Metrics asks a ResponderHelper for its metrics.
func (h *Helper) Metrics() Metrics {
	h.t.Helper()
	var m Metrics
	reply := h.Do("metrics")
	if _, err := fmt.Sscanf(reply, "requests=%d responses=%d gratuitous=%d announced=%d",
		&m.Requests, &m.Responses, &m.Gratuitous, &m.Announced); err != nil {
		h.t.Fatalf("parse metrics %q: %v", reply, err)
	}
	return m
}

// WaitAnnounced waits until the helper's responder answers for n
// addresses (its sockets are open), failing the test after timeout.
func (h *Helper) WaitAnnounced(n int, timeout time.Duration) {
	h.t.Helper()
	var last Metrics
	if !Eventually(timeout, func() bool { last = h.Metrics(); return last.Announced == n }) {
		h.t.Fatalf("responder answers for %d addresses after %v, want %d (stderr: %s)", last.Announced, timeout, n, h.stderr.String())
	}
}
