package lab

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestFRRConfigGolden(t *testing.T) {
	got := FRRConfig([]Node{nodePlan(1), nodePlan(2)})
	path := filepath.Join("testdata", "bgpd.conf.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("FRRConfig (-golden +got):\n%s", d)
	}
}

func TestLabNetns(t *testing.T) {
	for name, want := range map[string]bool{
		"herald-n1": true, "herald-n42": true, "herald-api": true, "herald-sw": true,
		"herald-nx": false, "herald-speaker-test": false, "other": false, "herald-n": false,
	} {
		if got := isLabNetns(name); got != want {
			t.Errorf("isLabNetns(%q) = %v", name, got)
		}
	}
}

func TestPidRecord(t *testing.T) {
	self := pidRecord{Pid: os.Getpid()}
	start, state, err := procStat(self.Pid)
	if err != nil || state == 'Z' {
		t.Fatalf("procStat(self) = %d %c %v", start, state, err)
	}
	self.Start = start
	if !self.alive() {
		t.Error("this process is not alive")
	}
	if (pidRecord{Pid: self.Pid, Start: start + 1}).alive() {
		t.Error("a record with another start time matches (pid reuse not caught)")
	}
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := writePidRecord(path, self); err != nil {
		t.Fatal(err)
	}
	got, err := readPidRecord(path)
	if err != nil || got != self {
		t.Errorf("readPidRecord = %+v, %v; want %+v", got, err, self)
	}
}
