package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves a registry on /metrics. It satisfies controller-runtime's
// Runnable and runs on every replica, leader or not.
type Server struct {
	Addr     string
	Registry *prometheus.Registry
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
	return serve(ctx, s.Addr, mux, "metrics")
}

// NeedLeaderElection is false: every replica serves its metrics.
func (s *Server) NeedLeaderElection() bool { return false }

// ServeHealth answers /healthz with 200 on addr until ctx ends, and
// /readyz with 200 while ready says so, else 503; both with ready's
// explanation in the body.
func ServeHealth(ctx context.Context, addr string, ready func() (bool, string)) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(why + "\n"))
	})
	return serve(ctx, addr, mux, "health")
}

func serve(ctx context.Context, addr string, h http.Handler, what string) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(shutCtx)
	case err := <-errc:
		return fmt.Errorf("%s server on %s: %w", what, addr, err)
	}
}
