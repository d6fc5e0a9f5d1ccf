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

// ServeHealth answers /healthz and /readyz with 200 on addr until ctx
// ends: the process is up and its loops run in it.
func ServeHealth(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
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
