package bfd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/herald-lb/herald/internal/announce/internal/nstest"
	fsm "github.com/herald-lb/herald/internal/bfd"
)

// The BFD sessions against FRR's bfdd: a router namespace running zebra
// and bfdd, joined by a veth to a node namespace where the manager runs as
// a helper process driven over stdin.

func TestMain(m *testing.M) {
	os.Exit(nstest.Main(m, map[string]func() int{"bfd-manager": managerHelper}))
}

const (
	rtrV4  = "172.31.241.1"
	rtrV6  = "fd00:41::1"
	nodeV4 = "172.31.241.11"
	nodeV6 = "fd00:41::11"
)

// bfdd is FRR's bfdd (with zebra) in a namespace.
type bfdd struct {
	ns  *nstest.NS
	dir string
}

// startBFDD starts zebra and bfdd in ns with the given bfdd.conf.
func startBFDD(t *testing.T, ns *nstest.NS, conf string) *bfdd {
	t.Helper()
	nstest.Require(t, "vtysh", "/usr/lib/frr/zebra", "/usr/lib/frr/bfdd")
	dir, err := os.MkdirTemp("", "herald-bfdd-")
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
	for name, text := range map[string]string{"zebra.conf": "hostname rtr\n!\n", "bfdd.conf": conf, "vtysh.conf": "service integrated-vtysh-config\n"} {
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
	zebra := ns.Start(t, common("zebra")...)
	if !nstest.Eventually(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "zserv.api")); return err == nil }) {
		t.Fatalf("zebra did not start:\n%s", zebra.Output())
	}
	proc := ns.Start(t, append(common("bfdd"), "--bfdctl", filepath.Join(dir, "bfdd.sock"))...)
	b := &bfdd{ns: ns, dir: dir}
	if !nstest.Eventually(10*time.Second, func() bool { _, err := b.peers(); return err == nil }) {
		t.Fatalf("bfdd did not start:\n%s", proc.Output())
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := ns.Try("vtysh", "--vty_socket", dir, "-c", "show bfd peers")
			t.Logf("FRR show bfd peers:\n%s\nbfdd log:\n%s", out, proc.Output())
		}
	})
	return b
}

// frrPeer is what the tests read of `show bfd peers json`.
type frrPeer struct {
	Peer                   string `json:"peer"`
	Status                 string `json:"status"`
	Diagnostic             string `json:"diagnostic"`
	RemoteDiagnostic       string `json:"remote-diagnostic"`
	RemoteTransmitInterval int    `json:"remote-transmit-interval"`
	RemoteReceiveInterval  int    `json:"remote-receive-interval"`
	RemoteDetectMultiplier int    `json:"remote-detect-multiplier"`
}

func (b *bfdd) peers() (map[string]frrPeer, error) {
	out, err := b.ns.Try("vtysh", "--vty_socket", b.dir, "-c", "show bfd peers json")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var list []frrPeer
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	m := map[string]frrPeer{}
	for _, p := range list {
		m[p.Peer] = p
	}
	return m, nil
}

// waitStatus waits until FRR's session with addr has status want and
// returns how long it took.
func (b *bfdd) waitStatus(t *testing.T, addr, want string, d time.Duration) (frrPeer, time.Duration) {
	t.Helper()
	t0 := time.Now()
	var p frrPeer
	if !nstest.Eventually(d, func() bool {
		m, err := b.peers()
		p = m[addr]
		return err == nil && p.Status == want
	}) {
		t.Fatalf("FRR's BFD session with %s: %+v after %s, want status %s", addr, p, d, want)
	}
	return p, time.Since(t0)
}

// signal sends sig to bfdd (its pid file).
func (b *bfdd) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.dir, "bfdd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
}

// manager is the Manager running in a node namespace (managerHelper).
type manager struct{ h *nstest.Helper }

func (m *manager) reconcile(t *testing.T, peers []Peer) {
	t.Helper()
	b, err := json.Marshal(peers)
	if err != nil {
		t.Fatal(err)
	}
	m.h.Do("reconcile " + string(b))
}

func (m *manager) states(t *testing.T) map[string]SessionState {
	t.Helper()
	var list []SessionState
	if err := json.Unmarshal([]byte(m.h.Do("states")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]SessionState{}
	for _, s := range list {
		out[s.Peer] = s
	}
	return out
}

// waitState waits until the manager's session peer is in state want and
// returns it with the time taken.
func (m *manager) waitState(t *testing.T, peer string, want fsm.State, d time.Duration) (SessionState, time.Duration) {
	t.Helper()
	t0 := time.Now()
	var st SessionState
	if !nstest.Eventually(d, func() bool { st = m.states(t)[peer]; return st.State == want }) {
		t.Fatalf("session %s: %+v after %s, want %s", peer, st, d, want)
	}
	return st, time.Since(t0)
}

// managerHelper runs a Manager and takes:
//
//	reconcile JSON   Reconcile with those Peers
//	states           the States as JSON
//	stop             end Run (every session AdminDown)
func managerHelper() int {
	log := funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 1})
	m := New(Options{Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()
	nstest.Serve(func(words []string) (string, error) {
		switch words[0] {
		case "reconcile":
			var peers []Peer
			if err := json.Unmarshal([]byte(strings.Join(words[1:], " ")), &peers); err != nil {
				return "", err
			}
			return "", m.Reconcile(peers)
		case "states":
			b, err := json.Marshal(m.States())
			return string(b), err
		case "stop":
			cancel()
			select {
			case err := <-runDone:
				return "", err
			case <-time.After(5 * time.Second):
				return "", errors.New("Run did not return 5s after its context ended")
			}
		}
		return "", fmt.Errorf("unknown command %q", words[0])
	})
	return 0
}

func fastPeer(name, addr string) Peer {
	return Peer{Name: name, Address: netipMust(addr), Config: fsm.Config{
		DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}}
}

// TestFRRSessions: IPv4 and IPv6 single-hop sessions with FRR's bfdd come
// up, with the intervals each side asked for (the poll sequence after Up
// ran: FRR sees 100 ms, not the 1 s of a session still coming up). Each
// side notices the other frozen within its detection time (3 x 100 ms),
// and the sessions come back when it thaws. On shutdown the router learns
// the session was taken down on purpose (AdminDown).
func TestFRRSessions(t *testing.T) {
	rtr, node := nstest.New(t, "rtr"), nstest.New(t, "n1")
	nstest.Veth(t, node, "eth0", rtr, "p1")
	rtr.Run(t, "ip", "addr", "add", rtrV4+"/24", "dev", "p1")
	rtr.Run(t, "ip", "addr", "add", rtrV6+"/64", "dev", "p1", "nodad")
	node.Run(t, "ip", "addr", "add", nodeV4+"/24", "dev", "eth0")
	node.Run(t, "ip", "addr", "add", nodeV6+"/64", "dev", "eth0", "nodad")
	b := startBFDD(t, rtr, "hostname rtr\n!\nbfd\n"+
		" peer "+nodeV4+"\n  receive-interval 100\n  transmit-interval 100\n !\n"+
		" peer "+nodeV6+"\n  receive-interval 100\n  transmit-interval 100\n !\n!\n")

	m := &manager{h: node.StartHelper(t, "bfd-manager")}
	m.reconcile(t, []Peer{fastPeer("r4", rtrV4), fastPeer("r6", rtrV6)})
	for _, p := range []struct{ name, rtrSide string }{{"r4", nodeV4}, {"r6", nodeV6}} {
		m.waitState(t, p.name, fsm.StateUp, 10*time.Second)
		fp, _ := b.waitStatus(t, p.rtrSide, "up", 5*time.Second)
		// Once the poll sequence is over FRR uses our 100 ms.
		if !nstest.Eventually(3*time.Second, func() bool {
			all, _ := b.peers()
			fp = all[p.rtrSide]
			return fp.RemoteTransmitInterval == 100 && fp.RemoteReceiveInterval == 100 && fp.RemoteDetectMultiplier == 3
		}) {
			t.Errorf("FRR's view of %s's intervals: %+v, want transmit and receive 100 ms, multiplier 3", p.rtrSide, fp)
		}
	}

	// The node freezes: the router notices within its detection time.
	m.h.Signal(syscall.SIGSTOP)
	_, took := b.waitStatus(t, nodeV4, "down", 3*time.Second)
	fp, _ := b.waitStatus(t, nodeV6, "down", 3*time.Second)
	t.Logf("FRR saw the frozen node's sessions down after %s (detection 300 ms; polled every ~20 ms); diagnostic %q", took.Round(time.Millisecond), fp.Diagnostic)
	if took > time.Second {
		t.Errorf("FRR noticed the frozen node after %s, want about 300 ms", took)
	}
	m.h.Signal(syscall.SIGCONT)
	b.waitStatus(t, nodeV4, "up", 10*time.Second)
	b.waitStatus(t, nodeV6, "up", 10*time.Second)
	m.waitState(t, "r4", fsm.StateUp, 5*time.Second)

	// The router freezes: the node notices within its detection time.
	b.signal(t, syscall.SIGSTOP)
	st, took := m.waitState(t, "r4", fsm.StateDown, 3*time.Second)
	t.Logf("the node saw the frozen router's session down after %s; diag %s", took.Round(time.Millisecond), st.Diag)
	if st.Diag != fsm.DiagTimeExpired {
		t.Errorf("session down with diag %s, want %s", st.Diag, fsm.DiagTimeExpired)
	}
	if took > time.Second {
		t.Errorf("the node noticed the frozen router after %s, want about 300 ms", took)
	}
	b.signal(t, syscall.SIGCONT)
	m.waitState(t, "r4", fsm.StateUp, 10*time.Second)
	m.waitState(t, "r6", fsm.StateUp, 10*time.Second)

	// Shutdown: AdminDown reaches the router.
	m.h.Do("stop")
	fp, _ = b.waitStatus(t, nodeV4, "down", 3*time.Second)
	if !strings.Contains(fp.RemoteDiagnostic, "administratively") {
		t.Errorf("FRR's session after the node's shutdown: %+v, want the remote diagnostic administratively down", fp)
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
