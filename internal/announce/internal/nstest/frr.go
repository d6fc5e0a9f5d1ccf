package nstest

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FRROptions say which FRR daemon StartFRR runs beside zebra.
type FRROptions struct {
	Daemon     string   // "bgpd", "bfdd"
	Conf       string   // the daemon's configuration
	ZebraArgs  []string // extra zebra arguments
	DaemonArgs []string // extra daemon arguments
	// Ready is a vtysh command that succeeds once the daemon answers.
	Ready string
	// Dump are vtysh commands whose output is logged when the test failed.
	Dump []string
}

// FRR is zebra and one FRR daemon running in a test namespace.
type FRR struct {
	NS  *NS
	Dir string // configuration, pid files and vty sockets
}

// StartFRR starts zebra and o.Daemon in ns, each with its own
// configuration in a fresh directory owned by the frr user, waits until
// o.Ready succeeds, and removes the directory when the test ends (the
// processes die with the namespace). On failure it logs o.Dump and the
// daemon's output.
func StartFRR(t testing.TB, ns *NS, o FRROptions) *FRR {
	t.Helper()
	Require(t, "vtysh", "/usr/lib/frr/zebra", "/usr/lib/frr/"+o.Daemon)
	dir, err := os.MkdirTemp("", "herald-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	u, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("user frr (is FRR installed?): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	files := map[string]string{
		"zebra.conf":       "hostname rtr\n!\n",
		o.Daemon + ".conf": o.Conf,
		"vtysh.conf":       "service integrated-vtysh-config\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	common := func(d string) []string {
		return []string{"/usr/lib/frr/" + d, "-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"),
			"-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "-P", "0", "--log", "stdout"}
	}
	zebra := ns.Start(t, append(common("zebra"), o.ZebraArgs...)...)
	if !Eventually(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "zserv.api")); return err == nil }) {
		t.Fatalf("zebra did not start:\n%s", zebra.Output())
	}
	args := append(common(o.Daemon), o.DaemonArgs...)
	if o.Daemon == "bfdd" {
		// Its control socket in the directory too, so it runs beside
		// another bfdd.
		args = append(args, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
	}
	proc := ns.Start(t, args...)
	f := &FRR{NS: ns, Dir: dir}
	if !Eventually(10*time.Second, func() bool { _, err := f.Vtysh(o.Ready); return err == nil }) {
		t.Fatalf("%s did not start:\n%s", o.Daemon, proc.Output())
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range o.Dump {
				out, _ := f.Vtysh(c)
				t.Logf("FRR %s:\n%s", c, out)
			}
			t.Logf("%s log:\n%s", o.Daemon, proc.Output())
		}
	})
	return f
}

// Vtysh runs one vtysh command against this FRR.
func (f *FRR) Vtysh(command string) (string, error) {
	return f.NS.Try("vtysh", "--vty_socket", f.Dir, "-c", command)
}
