package bfd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	os.Exit(nstest.Main(m, map[string]func() int{"bfd-manager": managerHelper, "bfd-sender": senderHelper, "bfd-answerer": answererHelper}))
}

const (
	rtrV4  = "172.31.241.1"
	rtrV6  = "fd00:41::1"
	nodeV4 = "172.31.241.11"
	nodeV6 = "fd00:41::11"
)

// bfdd is FRR's bfdd (with zebra) in a namespace.
type bfdd struct{ *nstest.FRR }

// startBFDD starts zebra and bfdd in ns with the given bfdd.conf.
func startBFDD(t *testing.T, ns *nstest.NS, conf string) *bfdd {
	t.Helper()
	return &bfdd{nstest.StartFRR(t, ns, nstest.FRROptions{
		Daemon: "bfdd", Conf: conf, Ready: "show bfd peers json", Dump: []string{"show bfd peers"},
	})}
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
	out, err := b.Vtysh("show bfd peers json")
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
	raw, err := os.ReadFile(filepath.Join(b.Dir, "bfdd.pid"))
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
//	release ADDR     Release the sessions with ADDR
//	keep ADDR        at the shutdown keep the sessions with ADDR (Keep)
//	stop             end Run (every session AdminDown but those kept)
func managerHelper() int {
	log := funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 1})
	var kept sync.Map
	m := New(Options{Log: log, Keep: func(a netip.Addr) bool { _, ok := kept.Load(a); return ok }})
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
		case "release":
			a, err := netip.ParseAddr(words[1])
			if err != nil {
				return "", err
			}
			m.Release(a)
			return "", nil
		case "keep":
			a, err := netip.ParseAddr(words[1])
			if err != nil {
				return "", err
			}
			kept.Store(a, true)
			return "", nil
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

// linkedPair returns a router and a node namespace joined by a veth, with
// the router's and the node's IPv4 and IPv6 addresses.
func linkedPair(t *testing.T) (rtr, node *nstest.NS) {
	t.Helper()
	rtr, node = nstest.New(t, "rtr"), nstest.New(t, "n1")
	nstest.Veth(t, node, "eth0", rtr, "p1")
	rtr.Run(t, "ip", "addr", "add", rtrV4+"/24", "dev", "p1")
	rtr.Run(t, "ip", "addr", "add", rtrV6+"/64", "dev", "p1", "nodad")
	node.Run(t, "ip", "addr", "add", nodeV4+"/24", "dev", "eth0")
	node.Run(t, "ip", "addr", "add", nodeV6+"/64", "dev", "eth0", "nodad")
	return rtr, node
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
	rtr, node := linkedPair(t)
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
	// Failed, the session stays silent for its hold (1 s) when nobody
	// releases it: the router's bfdd, thawed at once, hears nothing
	// until then.
	b.signal(t, syscall.SIGCONT)
	_, back := m.waitState(t, "r4", fsm.StateUp, 10*time.Second)
	m.waitState(t, "r6", fsm.StateUp, 10*time.Second)
	t.Logf("the session was up again %s after the node saw it down", back.Round(time.Millisecond))
	if back < 900*time.Millisecond {
		t.Errorf("the failed session was up again after %s, want it held 1 s", back)
	}
	// Released (as the speaker does once its BGP session started over),
	// it speaks at once, and the router answers at once.
	b.signal(t, syscall.SIGSTOP)
	m.waitState(t, "r4", fsm.StateDown, 3*time.Second)
	m.h.Do("release " + rtrV4)
	b.signal(t, syscall.SIGCONT)
	_, back = m.waitState(t, "r4", fsm.StateUp, 10*time.Second)
	t.Logf("released, the session was up again %s after the node saw it down", back.Round(time.Millisecond))
	if back > 700*time.Millisecond {
		t.Errorf("the released session was up again after %s, want it at once", back)
	}
	m.waitState(t, "r6", fsm.StateUp, 10*time.Second)

	// Shutdown: AdminDown reaches the router, but for the session kept
	// (its BGP session is left open for the process's exit): it stays up
	// until the process exits, and then times out.
	m.h.Do("keep " + rtrV6)
	m.h.Do("stop")
	fp, _ = b.waitStatus(t, nodeV4, "down", 3*time.Second)
	if !strings.Contains(fp.RemoteDiagnostic, "administratively") {
		t.Errorf("FRR's session after the node's shutdown: %+v, want the remote diagnostic administratively down", fp)
	}
	time.Sleep(time.Second) // three detection times
	if all, err := b.peers(); err != nil || all[nodeV6].Status != "up" {
		t.Errorf("FRR's kept session a second after the shutdown: %+v (%v), want up until the process exits", all[nodeV6], err)
	}
	m.h.Stop()
	fp, _ = b.waitStatus(t, nodeV6, "down", 3*time.Second)
	if strings.Contains(fp.RemoteDiagnostic, "administratively") {
		t.Errorf("FRR's kept session after the exit: %+v, want it timed out, not administratively down", fp)
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// senderHelper sends hand-made BFD packets and takes:
//
//	send ADDR TTL   one Down packet (my discriminator 7, your 0) to ADDR:3784 with that TTL
func senderHelper() int {
	nstest.Serve(func(words []string) (string, error) {
		if words[0] != "send" || len(words) != 3 {
			return "", fmt.Errorf("unknown command %q", strings.Join(words, " "))
		}
		dst, err := netip.ParseAddr(words[1])
		if err != nil {
			return "", err
		}
		ttl, err := strconv.Atoi(words[2])
		if err != nil {
			return "", err
		}
		conn, err := sourceSocket(dst)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		raw, err := conn.SyscallConn()
		if err != nil {
			return "", err
		}
		level, opt := syscall.IPPROTO_IP, syscall.IP_TTL
		if dst.Is6() {
			level, opt = syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
		}
		var serr error
		if err := raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), level, opt, ttl) }); err != nil {
			return "", err
		}
		if serr != nil {
			return "", serr
		}
		p := fsm.Packet{State: fsm.StateDown, DetectMult: 3, MyDiscriminator: 7,
			DesiredMinTx: time.Second, RequiredMinRx: time.Second}
		_, err = conn.WriteToUDPAddrPort(p.Append(nil), netip.AddrPortFrom(dst, PortSingleHop))
		return "", err
	})
	return 0
}

// answererHelper answers the first BFD packet from each source once, at
// once, as a router answers a Poll (Init with Final, TTL 255), and never
// sends anything else. Commands:
//
//	listen     open UDP 3784 (IPv4 and IPv6) and start answering
//	answered   the sources answered so far, sorted
func answererHelper() int {
	var mu sync.Mutex
	answered := map[netip.Addr]bool{}
	nstest.Serve(func(words []string) (string, error) {
		switch words[0] {
		case "listen":
			for _, network := range []string{"udp4", "udp6"} {
				conn, err := net.ListenUDP(network, &net.UDPAddr{Port: PortSingleHop})
				if err != nil {
					return "", err
				}
				raw, err := conn.SyscallConn()
				if err != nil {
					return "", err
				}
				level, opt := syscall.IPPROTO_IP, syscall.IP_TTL
				if network == "udp6" {
					level, opt = syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
				}
				_ = raw.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), level, opt, 255) })
				go func() {
					buf := make([]byte, 128)
					for {
						n, src, err := conn.ReadFromUDPAddrPort(buf)
						if err != nil {
							return
						}
						in, err := fsm.Unmarshal(buf[:n])
						from := src.Addr().Unmap()
						mu.Lock()
						first := err == nil && !answered[from]
						answered[from] = true
						mu.Unlock()
						if !first {
							continue
						}
						out := fsm.Packet{State: fsm.StateInit, Final: in.Poll, DetectMult: 3, MyDiscriminator: 9,
							YourDiscriminator: in.MyDiscriminator, DesiredMinTx: time.Second, RequiredMinRx: time.Second}
						_, _ = conn.WriteToUDPAddrPort(out.Append(nil), netip.AddrPortFrom(from, PortSingleHop))
					}
				}()
			}
			return "", nil
		case "answered":
			mu.Lock()
			defer mu.Unlock()
			var list []string
			for a := range answered {
				list = append(list, a.String())
			}
			slices.Sort(list)
			return strings.Join(list, " "), nil
		}
		return "", fmt.Errorf("unknown command %q", strings.Join(words, " "))
	})
	return 0
}

// TestFirstAnswer: a router that answers the session's first packet at
// once and then stays silent (as FRR's Final to the first Poll, before
// its own next packet) brings the session Up: the BFD ports are open
// before that first packet leaves, so the answer is not lost.
func TestFirstAnswer(t *testing.T) {
	rtr, node := linkedPair(t)
	a := rtr.StartHelper(t, "bfd-answerer")
	a.Do("listen")
	m := &manager{h: node.StartHelper(t, "bfd-manager")}
	m.reconcile(t, []Peer{fastPeer("r4", rtrV4), fastPeer("r6", rtrV6)})
	for _, name := range []string{"r4", "r6"} {
		m.waitState(t, name, fsm.StateUp, time.Second)
	}
	if got := a.Do("answered"); got != nodeV4+" "+nodeV6 {
		t.Errorf("answered %q, want both node addresses", got)
	}
}

// TestTTLCheck: the BFD ports open with the first session only. A
// single-hop session takes packets sent with TTL 255 only (RFC 5881
// section 5), so a host further away cannot drive it: with TTL 254 the
// router's Down packets change nothing, with 255 the session answers the
// handshake (Init).
func TestTTLCheck(t *testing.T) {
	rtr, node := linkedPair(t)
	m := &manager{h: node.StartHelper(t, "bfd-manager")}
	// Without sessions the BFD ports stay free for another daemon.
	m.h.Do("states")
	if out := node.Run(t, "ss", "-Hlun"); strings.Contains(out, ":3784") || strings.Contains(out, ":4784") {
		t.Errorf("BFD ports open without a session:\n%s", out)
	}
	m.reconcile(t, []Peer{fastPeer("r4", rtrV4), fastPeer("r6", rtrV6)})
	if !nstest.Eventually(2*time.Second, func() bool {
		out := node.Run(t, "ss", "-Hlun")
		return strings.Count(out, ":3784") == 2 && strings.Count(out, ":4784") == 2
	}) {
		t.Errorf("BFD ports (IPv4 and IPv6, 3784 and 4784) not open with sessions:\n%s", node.Run(t, "ss", "-Hlun"))
	}
	sender := rtr.StartHelper(t, "bfd-sender")
	for _, p := range []struct{ name, to string }{{"r4", nodeV4}, {"r6", nodeV6}} {
		sender.Do("send " + p.to + " 254")
		time.Sleep(300 * time.Millisecond)
		if st := m.states(t)[p.name]; st.State != fsm.StateDown || st.RemoteState != fsm.StateDown {
			t.Errorf("%s after a packet with TTL 254: %+v, want it ignored", p.name, st)
		}
		sender.Do("send " + p.to + " 255")
		m.waitState(t, p.name, fsm.StateInit, 2*time.Second)
	}
}

// TestFRRMultiHop: a multi-hop session (port 4784) with FRR's bfdd one
// router away comes up (packets arrive with TTL 254, at least the minimum
// 254); with a minimum above what arrives, the packets are dropped and the
// session goes down.
func TestFRRMultiHop(t *testing.T) {
	node, fwd, rtr := nstest.New(t, "n1"), nstest.New(t, "fwd"), nstest.New(t, "rtr")
	nstest.Veth(t, node, "eth0", fwd, "p1")
	nstest.Veth(t, rtr, "eth0", fwd, "p2")
	fwd.Sysctl(t, "net.ipv4.ip_forward=1")
	fwd.Run(t, "ip", "addr", "add", "172.31.242.1/24", "dev", "p1")
	fwd.Run(t, "ip", "addr", "add", "172.31.243.1/24", "dev", "p2")
	node.Run(t, "ip", "addr", "add", "172.31.242.11/24", "dev", "eth0")
	node.Run(t, "ip", "route", "add", "172.31.243.0/24", "via", "172.31.242.1")
	rtr.Run(t, "ip", "addr", "add", "172.31.243.2/24", "dev", "eth0")
	rtr.Run(t, "ip", "route", "add", "172.31.242.0/24", "via", "172.31.243.1")
	b := startBFDD(t, rtr, "hostname rtr\n!\nbfd\n peer 172.31.242.11 multihop local-address 172.31.243.2\n"+
		"  receive-interval 100\n  transmit-interval 100\n !\n!\n")

	m := &manager{h: node.StartHelper(t, "bfd-manager")}
	p := fastPeer("mh", "172.31.243.2")
	p.MultiHop, p.MinimumTTL = true, 254
	m.reconcile(t, []Peer{p})
	m.waitState(t, "mh", fsm.StateUp, 10*time.Second)
	b.waitStatus(t, "172.31.242.11", "up", 5*time.Second)

	p.MinimumTTL = 255
	m.reconcile(t, []Peer{p})
	st, _ := m.waitState(t, "mh", fsm.StateDown, 3*time.Second)
	if st.Diag != fsm.DiagTimeExpired {
		t.Errorf("with minimum TTL 255: %+v, want down with the detection time expired", st)
	}
}
