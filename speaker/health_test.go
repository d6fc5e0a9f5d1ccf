package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/internal/speaker"
	"github.com/herald-lb/herald/internal/testenv"
	"github.com/herald-lb/herald/internal/testenv/freeport"
)

func TestMain(m *testing.M) {
	stop := testenv.Start()
	code := m.Run()
	stop()
	os.Exit(code)
}

// TestHealthWhileWaitingForMemberlistSecret: a speaker waiting for the
// memberlist Secret (the controller's leader writes it) answers its
// liveness probe, so the kubelet does not kill it, and says it is not
// ready and why.
func TestHealthWhileWaitingForMemberlistSecret(t *testing.T) {
	env := testenv.Require(t)
	opts := speaker.DefaultOptions()
	opts.NodeName = "n1"
	opts.MemberlistBind = fmt.Sprintf("127.0.0.1:%d", freeport.Port(t))
	opts.MemberlistSecret = "herald-memberlist-absent"
	opts.MetricsAddr = "0"
	health := fmt.Sprintf("127.0.0.1:%d", freeport.Port(t))
	opts.HealthAddr = health

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- speaker.Run(ctx, env.Config, opts, logr.Discard()) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the speaker did not stop")
		}
	}()

	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + health + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := get("/healthz")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz while waiting for the memberlist secret: %d, %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body, err := get("/readyz")
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "memberlist secret") {
		t.Errorf("/readyz: %d %q %v, want 503 naming the memberlist secret", code, body, err)
	}
	select {
	case err := <-done:
		t.Fatalf("the speaker stopped while waiting: %v", err)
	default:
	}
}
