// Package nstest gives tests throw-away network namespaces joined by veth
// pairs, commands run inside them, and helper processes: the test binary
// itself re-executed under `ip netns exec`, so that code under test runs
// with every thread in the namespace (setns on one locked thread would
// leave the goroutines it starts outside).
//
// Tests that use it need root (they create namespaces). Without root they
// skip with a message saying so, unless HERALD_REQUIRE_NETNS=1, which turns
// the skip into a failure (CI runs as root and must not skip silently).
//
// Everything a test creates is removed in t.Cleanup, also on failure:
// helpers are stopped, every process left in a namespace is killed, then
// the namespace is deleted. Tests send traffic only inside namespaces they
// created.
package nstest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RequireEnv, set to 1, makes Require fail instead of skip.
const RequireEnv = "HERALD_REQUIRE_NETNS"

// helperEnv names the helper a re-executed test binary is to run.
const helperEnv = "HERALD_NSTEST_HELPER"

// Require skips (or, with HERALD_REQUIRE_NETNS=1, fails) the test unless
// it runs as root and the commands it needs are installed.
func Require(t testing.TB, commands ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, c := range append([]string{"ip"}, commands...) {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("needs root: creates network namespaces (missing: %s)", strings.Join(missing, ", "))
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s; %s=1 forbids skipping", msg, RequireEnv)
	}
	t.Skip(msg)
}

// Main runs the named helper and exits when the test binary was
// re-executed as one; otherwise it returns m.Run()'s code. Call it from
// TestMain: os.Exit(nstest.Main(m, helpers)).
func Main(m *testing.M, helpers map[string]func() int) int {
	if name := os.Getenv(helperEnv); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "nstest: unknown helper %q\n", name)
			return 2
		}
		return h()
	}
	return m.Run()
}

// NS is a network namespace that lives as long as the test.
type NS struct {
	Name string
}

var counter atomic.Int64

// New creates a namespace, brings its lo up, and deletes it (after killing
// what runs in it) when the test ends.
func New(t testing.TB, tag string) *NS {
	t.Helper()
	ns := &NS{Name: fmt.Sprintf("hrld%d-%d-%s", os.Getpid(), counter.Add(1), tag)}
	if out, err := command(context.Background(), "", "ip", "netns", "add", ns.Name); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() { ns.destroy(t) })
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// destroy kills what is left in the namespace, then deletes it.
func (ns *NS) destroy(t testing.TB) {
	for range 50 {
		out, _ := command(context.Background(), "", "ip", "netns", "pids", ns.Name)
		pids := strings.Fields(string(out))
		alive := 0
		for _, p := range pids {
			pid, err := strconv.Atoi(p)
			if err != nil {
				continue
			}
			if zombie(pid) {
				continue
			}
			alive++
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if alive == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := command(context.Background(), "", "ip", "netns", "del", ns.Name); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
	}
}

// zombie reports whether pid is gone or a zombie (kill -0 succeeds on
// zombies, so look at its state).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// command runs argv, inside ns unless ns is "", with a timeout.
func command(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
}

// Run runs argv in the namespace and returns its combined output; the
// test fails if it fails.
func (ns *NS) Run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := command(context.Background(), ns.Name, argv...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns.Name, strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Try runs argv in the namespace and returns its combined output and error.
func (ns *NS) Try(argv ...string) (string, error) {
	out, err := command(context.Background(), ns.Name, argv...)
	return string(out), err
}

// Sysctl sets each "key=value" in the namespace.
func (ns *NS) Sysctl(t testing.TB, settings ...string) {
	t.Helper()
	ns.Run(t, append([]string{"sysctl", "-q", "-w"}, settings...)...)
}

// Veth creates a veth pair with one end, aName, in a and the other, bName,
// in b, both up.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	if out, err := command(context.Background(), "", "ip", "link", "add", aName, "netns", a.Name,
		"type", "veth", "peer", "name", bName, "netns", b.Name); err != nil {
		t.Fatalf("create veth %s/%s: %v: %s", a.Name, b.Name, err, out)
	}
	a.Run(t, "ip", "link", "set", aName, "up")
	b.Run(t, "ip", "link", "set", bName, "up")
}

// MAC returns the MAC address of the interface in the namespace.
func (ns *NS) MAC(t testing.TB, iface string) string {
	t.Helper()
	return strings.TrimSpace(ns.Run(t, "cat", "/sys/class/net/"+iface+"/address"))
}

// Proc is a background process in a namespace.
type Proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// Start starts argv in the namespace in the background; it is killed when
// the test ends if it is still running.
func (ns *NS) Start(t testing.TB, argv ...string) *Proc {
	t.Helper()
	argv = append([]string{"ip", "netns", "exec", ns.Name}, argv...)
	p := &Proc{cmd: exec.Command(argv[0], argv[1:]...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(argv, " "), err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Kill)
	return p
}

// Output is what the process wrote so far (stdout and stderr).
func (p *Proc) Output() string { return p.out.String() }

// WaitOutput waits until the output contains s or the timeout passes.
func (p *Proc) WaitOutput(s string, timeout time.Duration) bool {
	return Eventually(timeout, func() bool { return strings.Contains(p.Output(), s) })
}

// Wait waits for the process to exit, killing it after timeout; it
// reports whether it exited on its own.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Kill kills the process and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Eventually polls cond every 20ms until it holds or timeout passes.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Helper is the test binary re-executed in a namespace as a named helper,
// driven by lines on its stdin; each command gets one reply line.
type Helper struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	done   chan struct{}
}

// StartHelper starts the named helper (see Main and Serve) in the
// namespace. prefix, if any, is put before the command (e.g. setpriv to
// drop a capability). It is stopped when the test ends and its stderr
// (its log) is shown if the test failed.
func (ns *NS) StartHelper(t testing.TB, name string, prefix ...string) *Helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	argv := append([]string{"ip", "netns", "exec", ns.Name}, prefix...)
	argv = append(argv, self, "-test.run=^$")
	h := &Helper{t: t, lines: make(chan string, 16), stderr: &syncBuffer{}, done: make(chan struct{})}
	h.cmd = exec.Command(argv[0], argv[1:]...)
	h.cmd.Env = append(os.Environ(), helperEnv+"="+name)
	h.cmd.Stderr = h.stderr
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.Stop()
		if t.Failed() {
			t.Logf("helper %s in %s logged:\n%s", name, ns.Name, h.stderr.String())
		}
	})
	return h
}

// Do sends a command line and returns the helper's reply; the test fails
// if the helper reports an error or does not answer in time.
func (h *Helper) Do(line string) string {
	h.t.Helper()
	reply, err := h.Try(line)
	if err != nil {
		h.t.Fatalf("helper %q: %v", line, err)
	}
	return reply
}

// Try sends a command line and returns the helper's reply or error.
func (h *Helper) Try(line string) (string, error) {
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		return "", fmt.Errorf("write to helper: %w (stderr: %s)", err, h.stderr.String())
	}
	select {
	case reply, ok := <-h.lines:
		if !ok {
			return "", fmt.Errorf("helper exited (stderr: %s)", h.stderr.String())
		}
		if msg, isErr := strings.CutPrefix(reply, "err "); isErr {
			return "", errors.New(msg)
		}
		return strings.TrimPrefix(strings.TrimPrefix(reply, "ok"), " "), nil
	case <-time.After(20 * time.Second):
		return "", fmt.Errorf("no answer in 20s (stderr: %s)", h.stderr.String())
	}
}

// Signal sends sig to the helper process (`ip netns exec` execs the
// helper, so this is the helper itself).
func (h *Helper) Signal(sig os.Signal) {
	_ = h.cmd.Process.Signal(sig)
}

// Stop closes the helper's stdin, which asks it to stop, and kills it if
// it has not exited within 5s.
func (h *Helper) Stop() {
	_ = h.stdin.Close()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// Serve is the helper side: it reads command lines from stdin, calls do
// with each command's words, and writes "ok REPLY" or "err MESSAGE". It
// returns when stdin ends.
func Serve(do func(words []string) (string, error)) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		words := strings.Fields(sc.Text())
		if len(words) == 0 {
			continue
		}
		reply, err := do(words)
		if err != nil {
			fmt.Printf("err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Printf("ok %s\n", strings.ReplaceAll(reply, "\n", " "))
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
