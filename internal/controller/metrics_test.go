package controller_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

func scrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metricLine finds the sample line for name with exactly the given labels.
func hasSample(body, sample string) bool {
	for _, line := range strings.Split(body, "\n") {
		if line == sample {
			return true
		}
	}
	return false
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeport.Port(t)))
	f.startController(func(o *controller.Options) { o.MetricsAddr = addr })
	f.pool("metrics", []string{"198.18.21.0/29", "fd00:18:21::/120"})
	f.service("m1")
	f.service("m2")
	f.waitIPs("m1")
	f.waitIPs("m2")
	want := []string{
		`herald_pool_addresses_total{family="IPv4",pool="metrics"} 8`,
		`herald_pool_addresses_total{family="IPv6",pool="metrics"} 256`,
		`herald_pool_addresses_in_use{family="IPv4",pool="metrics"} 2`,
		`herald_pool_addresses_in_use{family="IPv6",pool="metrics"} 0`,
		`herald_controller_services_allocated 2`,
		`herald_config_loaded 1`,
		`herald_config_stale 0`,
	}
	f.eventually("metrics", waitFor, func() (bool, string) {
		body, err := scrape(addr)
		if err != nil {
			return false, err.Error()
		}
		for _, w := range want {
			if !hasSample(body, w) {
				return false, "missing " + w
			}
		}
		return true, ""
	})

	f.pool("broken", []string{"not-an-address"})
	f.eventually("stale config metric", waitFor, func() (bool, string) {
		body, err := scrape(addr)
		if err != nil {
			return false, err.Error()
		}
		return hasSample(body, "herald_config_stale 1") && hasSample(body, "herald_config_loaded 1"), fmt.Sprint(len(body))
	})
}
