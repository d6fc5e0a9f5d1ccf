package memberlist

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/herald-lb/herald/internal/election"
)

// Deadlines are generous: the tests must pass on a busy 2-core machine.
const (
	eventually = 10 * time.Second
	poll       = 5 * time.Millisecond
)

// member is a Membership running in the test.
type member struct {
	*Membership
	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// addr returns the "ip:port" the member listens on.
func (mb *member) addr() string { return mb.list.Load().LocalNode().Address() }

// stop leaves gracefully and waits for Run to return.
func (mb *member) stop(t *testing.T) {
	t.Helper()
	mb.cancel()
	mb.wait(t)
}

// kill stops the member without leaving, as a crash would.
func (mb *member) kill(t *testing.T) {
	t.Helper()
	mb.abortSilently()
	mb.wait(t)
}

func (mb *member) wait(t *testing.T) {
	t.Helper()
	select {
	case <-mb.done:
		if mb.err != nil {
			t.Errorf("%s: Run: %v", mb.name, mb.err)
		}
	case <-time.After(eventually):
		t.Fatalf("%s: Run did not return", mb.name)
	}
}

// fast returns options with the defaults but for a loopback address and
// a free port.
func fast(name string, join ...string) Options {
	return Options{NodeName: name, BindAddr: "127.0.0.1", BindPort: -1, Join: join}
}

// start runs a member with opts until the test ends; it returns once the
// member listens.
func start(t *testing.T, opts Options) *member {
	t.Helper()
	mb, err := tryStart(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// tryStart starts a member, or says why it could not.
func tryStart(t *testing.T, opts Options) (*member, error) {
	t.Helper()
	if opts.Log.GetSink() == nil {
		opts.Log = quietLog(t)
	}
	m, err := New(opts)
	if err != nil {
		return nil, fmt.Errorf("New(%s): %w", opts.NodeName, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{Membership: m, name: opts.NodeName, cancel: cancel, done: make(chan struct{})}
	go func() {
		mb.err = m.Run(ctx)
		close(mb.done)
	}()
	select {
	case <-m.ready:
	case <-mb.done:
		cancel()
		return nil, fmt.Errorf("%s: Run: %w", opts.NodeName, mb.err)
	case <-time.After(eventually):
		cancel()
		return nil, fmt.Errorf("%s: memberlist did not start", opts.NodeName)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-mb.done:
		case <-time.After(eventually):
			t.Errorf("%s: Run did not return at cleanup", mb.name)
		}
	})
	return mb, nil
}

// quietLog logs memberlist's errors and our info into the test log only
// when -v is given.
func quietLog(t *testing.T) logr.Logger {
	if !testing.Verbose() {
		return logr.Discard()
	}
	return testr.NewWithOptions(t, testr.Options{Verbosity: 0})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(eventually)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", eventually, what)
		}
		time.Sleep(poll)
	}
	return time.Since(start)
}

func hasMembers(m *member, want ...string) func() bool {
	slices.Sort(want)
	return func() bool { return slices.Equal(m.Members(), want) }
}

func hasKnown(m *member, want ...string) func() bool {
	slices.Sort(want)
	return func() bool { return slices.Equal(m.Known(), want) }
}

func claimsOf(m *member, node string, want []election.Claim) func() bool {
	return func() bool { return slices.Equal(m.Claims()[node], want) }
}

// t1 is a claim epoch: 2026-01-01T00:00:00Z in Unix milliseconds.
const t1 int64 = 1_767_225_600_000

// at returns claims on ips, all taken over at epoch.
func at(epoch int64, ips ...netip.Addr) []election.Claim {
	out := make([]election.Claim, len(ips))
	for i, a := range ips {
		out[i] = election.Claim{IP: a, Epoch: epoch}
	}
	return out
}

// addrs returns n IPv4 addresses from 10.0.0.0 + from.
func addrs(from, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		v := 10<<24 + from + i
		out[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return out
}

func names(ms ...*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
