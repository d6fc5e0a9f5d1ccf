package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcSpec says how to start one lab process: argv run inside a network
// namespace, output appended to logs/<Name>.log. Specs are kept in the
// state file so any process (the CLI, a test reusing a lab) can restart
// them.
type ProcSpec struct {
	Name  string   `json:"name"`
	Netns string   `json:"netns"`
	Argv  []string `json:"argv"`
}

// pidRecord identifies a process beyond its pid: the start time (clock
// ticks after boot, /proc/PID/stat field 22) guards against pid reuse.
type pidRecord struct {
	Pid   int
	Start uint64
}

func (l *Lab) runDir() string { return filepath.Join(l.Dir, "run") }
func (l *Lab) logDir() string { return filepath.Join(l.Dir, "logs") }
func (l *Lab) pidFile(name string) string {
	return filepath.Join(l.runDir(), name+".pid")
}

// LogFile is where process name writes its output.
func (l *Lab) LogFile(name string) string { return filepath.Join(l.logDir(), name+".log") }

// startProc starts spec in the background, detached from the caller's
// session so it outlives `lab up`, and records its pid before returning.
func (l *Lab) startProc(spec ProcSpec) error {
	if err := os.MkdirAll(l.runDir(), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(l.logDir(), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(l.LogFile(spec.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s lab: start %s in %s: %s\n", time.Now().Format(time.RFC3339Nano), spec.Name, spec.Netns, strings.Join(spec.Argv, " "))
	// `ip netns exec` enters the namespace and execs argv: the pid we
	// get is the process's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", spec.Netns}, spec.Argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", spec.Name, err)
	}
	rec := pidRecord{Pid: cmd.Process.Pid}
	rec.Start, _, _ = procStat(rec.Pid)
	// Reap it if it dies while we live; after we exit, init does.
	go func() { _ = cmd.Wait() }()
	return writePidRecord(l.pidFile(spec.Name), rec)
}

func writePidRecord(path string, rec pidRecord) error {
	return os.WriteFile(path, fmt.Appendf(nil, "%d %d\n", rec.Pid, rec.Start), 0o644)
}

func readPidRecord(path string) (pidRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return pidRecord{}, fmt.Errorf("%s: empty", path)
	}
	var rec pidRecord
	if rec.Pid, err = strconv.Atoi(f[0]); err != nil {
		return pidRecord{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(f) > 1 {
		rec.Start, _ = strconv.ParseUint(f[1], 10, 64)
	}
	return rec, nil
}

// procStat returns a process's start time and state letter from
// /proc/PID/stat, or an error when there is no such process.
func procStat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("pid %d: short stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// alive reports whether rec still names a running (or stopped) process.
// A zombie is dead: it only waits for its parent to reap it.
func (rec pidRecord) alive() bool {
	start, state, err := procStat(rec.Pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return rec.Start == 0 || start == rec.Start
}

// procRecord returns the recorded process name, if it runs.
func (l *Lab) procRecord(name string) (pidRecord, bool) {
	rec, err := readPidRecord(l.pidFile(name))
	if err != nil {
		return pidRecord{}, false
	}
	return rec, rec.alive()
}

// ProcRunning reports whether lab process name runs (a stopped process
// runs).
func (l *Lab) ProcRunning(name string) bool {
	_, ok := l.procRecord(name)
	return ok
}

// ProcState is the state letter of a lab process as ps shows it (R, S, T
// for stopped, ...), or "" when it does not run.
func (l *Lab) ProcState(name string) string {
	rec, ok := l.procRecord(name)
	if !ok {
		return ""
	}
	_, st, err := procStat(rec.Pid)
	if err != nil {
		return ""
	}
	return string(st)
}

// Signal sends sig to lab process name.
func (l *Lab) Signal(name string, sig syscall.Signal) error {
	rec, ok := l.procRecord(name)
	if !ok {
		return fmt.Errorf("%s: %w", name, ErrNotRunning)
	}
	return syscall.Kill(rec.Pid, sig)
}

// ErrNotRunning says a lab process is not running.
var ErrNotRunning = errors.New("not running")

// StopProc stops lab process name: SIGTERM (and SIGCONT, in case it is
// stopped), then SIGKILL after grace. It returns once the process is gone.
func (l *Lab) StopProc(ctx context.Context, name string, grace time.Duration) error {
	rec, ok := l.procRecord(name)
	if ok {
		if err := terminate(ctx, rec, grace); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
	}
	_ = os.Remove(l.pidFile(name))
	return nil
}

// StartProc (re)starts lab process name from its recorded spec; it is an
// error when it already runs.
func (l *Lab) StartProc(name string) error {
	spec, ok := l.state.Procs[name]
	if !ok {
		return fmt.Errorf("no lab process %q", name)
	}
	if l.ProcRunning(name) {
		return fmt.Errorf("%s: already running", name)
	}
	return l.startProc(spec)
}

// terminate ends one process and waits until it is gone or a zombie.
func terminate(ctx context.Context, rec pidRecord, grace time.Duration) error {
	if !rec.alive() {
		return nil
	}
	_ = syscall.Kill(rec.Pid, syscall.SIGTERM)
	_ = syscall.Kill(rec.Pid, syscall.SIGCONT)
	if waitGone(ctx, []pidRecord{rec}, grace) {
		return nil
	}
	_ = syscall.Kill(rec.Pid, syscall.SIGKILL)
	if waitGone(ctx, []pidRecord{rec}, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("pid %d survived SIGKILL", rec.Pid)
}

// terminateAll ends many processes at once: SIGTERM to all, one grace
// period, SIGKILL to the rest.
func terminateAll(ctx context.Context, recs []pidRecord, grace time.Duration) error {
	var live []pidRecord
	for _, r := range recs {
		if r.alive() {
			live = append(live, r)
			_ = syscall.Kill(r.Pid, syscall.SIGTERM)
			_ = syscall.Kill(r.Pid, syscall.SIGCONT)
		}
	}
	if len(live) == 0 || waitGone(ctx, live, grace) {
		return nil
	}
	for _, r := range live {
		if r.alive() {
			_ = syscall.Kill(r.Pid, syscall.SIGKILL)
		}
	}
	if waitGone(ctx, live, 5*time.Second) {
		return nil
	}
	var left []string
	for _, r := range live {
		if r.alive() {
			left = append(left, strconv.Itoa(r.Pid))
		}
	}
	return fmt.Errorf("processes survived SIGKILL: %s", strings.Join(left, " "))
}

func waitGone(ctx context.Context, recs []pidRecord, d time.Duration) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(d)
	for {
		gone := true
		for _, r := range recs {
			if r.alive() {
				gone = false
				break
			}
		}
		if gone {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-t.C:
		}
	}
}

// recordedProcs lists the pid files under dir/run, sorted by name.
func recordedProcs(dir string) (map[string]pidRecord, []string) {
	recs := map[string]pidRecord{}
	files, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid"))
	var names []string
	for _, f := range files {
		rec, err := readPidRecord(f)
		if err != nil {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		recs[name] = rec
		names = append(names, name)
	}
	sort.Strings(names)
	return recs, names
}

// netnsPids lists the processes in a namespace (`ip netns pids`), with their
// start times so they can be killed safely.
func netnsPids(ctx context.Context, ns string) []pidRecord {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var recs []pidRecord
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		start, _, err := procStat(pid)
		if err != nil {
			continue
		}
		recs = append(recs, pidRecord{Pid: pid, Start: start})
	}
	return recs
}
