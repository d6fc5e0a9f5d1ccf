package memberlist

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line, level, msg string
	}{
		{"[ERR] memberlist: Push/Pull with b failed: EOF\n", "ERR", "Push/Pull with b failed: EOF"},
		{"[WARN] memberlist: Refuting a suspect message (from: b)\n", "WARN", "Refuting a suspect message (from: b)"},
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5\n", "DEBUG", "Stream connection from=127.0.0.1:5"},
		{"[INFO] memberlist: Marking c as failed\r\n", "INFO", "Marking c as failed"},
		{"no level here\n", "", "no level here"},
		{"[unterminated\n", "", "[unterminated"},
		{"", "", ""},
	}
	for _, tc := range tests {
		level, msg := parseLine(tc.line)
		if level != tc.level || msg != tc.msg {
			t.Errorf("parseLine(%q) = %q, %q; want %q, %q", tc.line, level, msg, tc.level, tc.msg)
		}
	}
}

func TestLogBridge(t *testing.T) {
	var got []string
	l := funcr.New(func(prefix, args string) { got = append(got, args) }, funcr.Options{Verbosity: 2})
	std := newStdLogger(l)
	std.Printf("[ERR] memberlist: Failed to send ping: %s", "boom")
	std.Printf("[WARN] memberlist: Refuting a dead message (from: b)")
	std.Printf("[INFO] memberlist: Marking c as failed")
	std.Printf("[DEBUG] memberlist: Stream connection")
	std.Printf("[TRACE] memberlist: something")
	want := []string{
		`"msg"="memberlist reported an error" "error"="Failed to send ping: boom"`,
		`"level"=0 "msg"="Refuting a dead message (from: b)"`,
		`"level"=1 "msg"="Marking c as failed"`,
		`"level"=2 "msg"="Stream connection"`,
		`"level"=2 "msg"="something"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bridged logs mismatch (-want +got):\n%s", diff)
	}

	got = nil
	quiet := newStdLogger(funcr.New(func(prefix, args string) { got = append(got, args) }, funcr.Options{}))
	quiet.Printf("[DEBUG] memberlist: Stream connection")
	quiet.Printf("[INFO] memberlist: Marking c as failed")
	if len(got) != 0 {
		t.Errorf("V(1)/V(2) lines logged at verbosity 0: %s", strings.Join(got, "; "))
	}
}
