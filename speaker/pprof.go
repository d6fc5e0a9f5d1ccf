//go:build pprof

package main

// Built with -tags pprof, the speaker serves net/http/pprof on
// $HERALD_PPROF_ADDR (default 127.0.0.1:6060), for profiling at scale.

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("HERALD_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() { _ = http.ListenAndServe(addr, nil) }()
}
