//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
)

var families = []lab.Family{lab.IPv4, lab.IPv6}

// TestL2 checks layer-2 announcement per family: the address comes from
// the suite's pool, exactly one node's MAC answers ARP/NDP for it, that
// node's ServiceL2Status says so, and curl from the L2 client and from the
// routed client reaches that node's backend.
func TestL2(t *testing.T) {
	requireLab(t)
	for _, fam := range families {
		t.Run(string(fam), func(t *testing.T) {
			name := "l2-" + string(fam)
			newService(t, name, family(fam))
			ip := waitIPs(t, name, 1)[0]
			if lab.FamilyOf(ip) != fam || !plan.Main.Contains(ip) {
				t.Fatalf("EXTERNAL-IP %s: want an %s address of pool %s", ip, fam, poolMain)
			}
			requireSpeaker(t)
			owner := waitOwner(t, name, ip, true, 20*time.Second)
			ctx := ctxT(t)
			mac, err := drv.NodeMAC(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s is answered by %s (%s)", ip, owner, mac)
			waitCurl(t, lab.HostL2Client, ip, 80, owner, 10*time.Second)
			waitCurl(t, lab.HostClient, ip, 80, owner, 10*time.Second)

			// nodeAssigned tells the owner once; passes that change
			// nothing for this Service (another Service comes and
			// goes, this one is touched) add no event.
			waitNodeAssigned(t, name, ip, owner, 10*time.Second)
			before := nodeAssignedEvents(t, name)
			newService(t, name+"-other", family(fam))
			waitIPs(t, name+"-other", 1)
			svc := getService(t, name)
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			svc.Annotations["e2e.herald.dev/touched"] = "yes"
			if err := cl.Update(ctxT(t), svc); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Second)
			if after := nodeAssignedEvents(t, name); after.count != before.count {
				t.Errorf("nodeAssigned events for %s went from %d to %d with no owner change: %v", name, before.count, after.count, after.messages)
			}
		})
	}
}

// assigned sums the nodeAssigned events of a Service (an event repeated
// by the recorder counts as many times as it says).
type assigned struct {
	count    int
	messages []string
}

func nodeAssignedEvents(t *testing.T, svcName string) assigned {
	t.Helper()
	var a assigned
	for _, e := range eventsAbout(t, testNS, "Service", svcName, "nodeAssigned") {
		n := max(1, int(e.Count))
		if e.Series != nil {
			n = max(n, int(e.Series.Count))
		}
		a.count += n
		a.messages = append(a.messages, fmt.Sprintf("%dx %s", n, e.Message))
	}
	sort.Strings(a.messages)
	return a
}

// waitNodeAssigned waits for a nodeAssigned event of the Service naming
// owner and ip.
func waitNodeAssigned(t *testing.T, svcName string, ip netip.Addr, owner string, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("a nodeAssigned event says %s announces %s", owner, ip), func() (bool, string) {
		a := nodeAssignedEvents(t, svcName)
		for _, m := range a.messages {
			if strings.Contains(m, ip.String()) && strings.HasSuffix(m, "node "+owner) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("events: %v", a.messages)
	})
}

// failure is one way a node fails, and how to repair it.
type failure struct {
	name   string
	fail   func(ctx context.Context, node string) error
	repair func(ctx context.Context, node string) error
	// graceful: the speaker hands over; a curl loop at 20/s across the
	// failure must see no failed request.
	graceful bool
}

var failures = []failure{
	{
		name:   "sigkill",
		fail:   func(ctx context.Context, n string) error { return drv.SignalSpeaker(ctx, n, syscall.SIGKILL) },
		repair: func(ctx context.Context, n string) error { return drv.RestartSpeaker(ctx, n) },
	},
	{
		// Silent: the process is frozen, its sockets stay open.
		name: "sigstop",
		fail: func(ctx context.Context, n string) error { return drv.SignalSpeaker(ctx, n, syscall.SIGSTOP) },
		repair: func(ctx context.Context, n string) error {
			return drv.SignalSpeaker(ctx, n, syscall.SIGCONT)
		},
	},
	{
		// Silent: the whole node drops off the segment.
		name:   "linkdown",
		fail:   func(ctx context.Context, n string) error { return drv.LinkDown(ctx, n) },
		repair: func(ctx context.Context, n string) error { return drv.LinkUp(ctx, n) },
	},
	{
		// Graceful: the speaker leaves memberlist before it stops (a
		// rolling update).
		name:     "sigterm",
		fail:     func(ctx context.Context, n string) error { return drv.SignalSpeaker(ctx, n, syscall.SIGTERM) },
		repair:   func(ctx context.Context, n string) error { return drv.RestartSpeaker(ctx, n) },
		graceful: true,
	},
}

// TestL2Failover fails the owner of an address in each way and measures
// the time until curl from the L2 client reaches a new owner (the client
// keeps its neighbour entry, so the new owner must tell it: tcpdump on the
// client must see its gratuitous ARP / unsolicited NA). A graceful
// shutdown must cost no request of a curl loop at 20/s. When the failed
// node is back, the address stays where it went (no failback), and
// nodeAssigned was emitted for the move only.
func TestL2Failover(t *testing.T) {
	requireLab(t)
	requireSpeaker(t)
	if len(drv.NodeNames()) < 2 {
		t.Skip("failover needs two nodes")
	}
	for _, f := range failures {
		for _, fam := range families {
			t.Run(f.name+"/"+string(fam), func(t *testing.T) {
				name := fmt.Sprintf("failover-%s-%s", f.name, fam)
				newService(t, name, family(fam))
				ip := waitIPs(t, name, 1)[0]
				old := waitOwner(t, name, ip, true, 20*time.Second)
				// The client learns the owner's MAC, as a real client would.
				waitCurl(t, lab.HostL2Client, ip, 80, old, 10*time.Second)
				waitNodeAssigned(t, name, ip, old, 10*time.Second)

				ctx := ctxT(t)
				capture, err := lab.StartCapture(ctx, drv, lab.HostL2Client, "arp or icmp6", 5000, 100*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer capture.Stop()
				var loop *curlLoop
				if f.graceful {
					loop = startCurlLoop(t, lab.HostL2Client, ip, 40*time.Millisecond, 100*time.Second) // about 20/s
					defer loop.stop()
					loop.waitAnswers(t, old, 5, 10*time.Second)
				}

				t0 := time.Now()
				if err := f.fail(ctx, old); err != nil {
					t.Fatalf("%s %s: %v", f.name, old, err)
				}
				repaired := false
				repair := func() {
					if repaired {
						return
					}
					repaired = true
					if err := f.repair(context.Background(), old); err != nil {
						t.Errorf("repair %s after %s: %v", old, f.name, err)
					}
					waitSpeakersUp(t)
				}
				t.Cleanup(repair)

				newOwner, took := waitNewOwner(t, ip, old, 30*time.Second)
				figure(t, fmt.Sprintf("l2-failover-%s-%s", f.name, fam), took)
				t.Logf("%s moved from %s to %s; curl from the L2 client answered after %s", ip, old, newOwner, took.Round(time.Millisecond))

				// The new owner told the client at once.
				mac, err := drv.NodeMAC(ctx, newOwner)
				if err != nil {
					t.Fatal(err)
				}
				kind := map[lab.Family]string{lab.IPv4: "gratuitous ARP", lab.IPv6: "unsolicited neighbor advertisement"}[fam]
				var first lab.L2Packet
				eventually(t, 3*time.Second, fmt.Sprintf("tcpdump on the L2 client sees a %s for %s from %s (%s)", kind, ip, newOwner, mac), func() (bool, string) {
					p, ok := lab.FirstAnnouncement(capture.Packets(), ip, mac.String(), t0)
					if ok {
						first = p
						t.Logf("first %s from %s after %s", kind, newOwner, p.Time.Sub(t0).Round(time.Millisecond))
					}
					return ok, fmt.Sprintf("%d ARP/ICMPv6 packets captured, none announces %s from %s", len(capture.Packets()), ip, mac)
				})
				if f.graceful {
					// On its way out the old owner announces nothing more:
					// an announcement still due from when it took the
					// address would pull the client back to it.
					time.Sleep(time.Second) // past any announcement still due
					oldMAC, err := drv.NodeMAC(ctx, old)
					if err != nil {
						t.Fatal(err)
					}
					if p, ok := lab.FirstAnnouncement(capture.Packets(), ip, oldMAC.String(), first.Time); ok {
						t.Errorf("%s, leaving, announced %s %s after %s took it over", old, ip, p.Time.Sub(first.Time).Round(time.Millisecond), newOwner)
					}
				}

				if loop != nil {
					time.Sleep(time.Second)
					res := loop.stop()
					checkHandover(t, res, t0, "the graceful shutdown of "+old, newOwner)
				}

				// The network and the status agree on the new owner, and
				// nodeAssigned says so.
				if got := waitOwner(t, name, ip, false, 10*time.Second); got != newOwner {
					t.Fatalf("curl reaches %s but %s answers ARP/NDP", newOwner, got)
				}
				waitNodeAssigned(t, name, ip, newOwner, 10*time.Second)
				events := nodeAssignedEvents(t, name)

				// The failed node comes back; the address stays put.
				repair()
				time.Sleep(time.Second)
				consistently(t, 5*time.Second, fmt.Sprintf("%s stays on %s after %s is back", ip, newOwner, old), func() (bool, string) {
					cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					body, err := lab.Curl(cctx, drv, lab.HostL2Client, ip, 80)
					if err != nil || body != newOwner {
						return false, fmt.Sprintf("curl: %q %v", body, err)
					}
					node, err := macOwner(cctx, ip)
					return err == nil && node == newOwner, fmt.Sprintf("ARP/NDP owner %q %v", node, err)
				})
				if got := waitOwner(t, name, ip, true, 20*time.Second); got != newOwner {
					t.Fatalf("after %s came back, %s answers for %s (moved back from %s)", old, got, ip, newOwner)
				}
				if after := nodeAssignedEvents(t, name); after.count != events.count {
					t.Errorf("nodeAssigned events went from %d to %d after %s came back, with no owner change: %v", events.count, after.count, old, after.messages)
				}
				// Two nodes answering for a moment is a handover, not a
				// conflict with another host.
				if c := serviceEvents(t, name, "AddressConflict"); len(c) > 0 {
					t.Errorf("the handover was reported as an address conflict: %q", c)
				}
			})
		}
	}
}

// waitNewOwner polls curl from the L2 client (short timeouts) until a node
// other than old answers, and returns it with the time taken.
func waitNewOwner(t *testing.T, ip netip.Addr, old string, d time.Duration) (string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	last := ""
	for time.Since(t0) < d {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		out, err := drv.Exec(ctx, lab.HostL2Client, "curl", "-s", "-g", "--max-time", "0.5", lab.URL(ip, 80))
		cancel()
		body := strings.TrimSpace(string(out))
		if err == nil && body != "" && body != old {
			return body, time.Since(t0)
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "answered " + body
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no node but %s answered %s within %s (last: %s)", old, ip, d, last)
	return "", 0
}

// waitSpeakersUp waits until every node's speaker answers on its health
// port again (after a repair).
func waitSpeakersUp(t *testing.T) {
	t.Helper()
	l, ok := drv.(*lab.Lab)
	if !ok {
		return // the kind driver's repairs wait for readiness themselves
	}
	for _, n := range l.NodeNames() {
		a, _ := l.NodeAddress(n, lab.IPv4)
		url := fmt.Sprintf("http://%s:%d/", a, lab.HealthPort)
		eventually(t, 30*time.Second, "speaker on "+n+" is up", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			out, _ := l.Exec(ctx, n, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url)
			code := strings.TrimSpace(string(out))
			return code != "" && code != "000", "no answer on " + url
		})
	}
	// ... and sees every other as a member again, so that the next
	// failure is not met by a cluster still healing the last one.
	want := fmt.Sprintf("herald_l2_members %d", len(l.NodeNames()))
	for _, n := range l.NodeNames() {
		a, _ := l.NodeAddress(n, lab.IPv4)
		url := fmt.Sprintf("http://%s:%d/metrics", a, lab.MetricsPort)
		eventually(t, 30*time.Second, "speaker on "+n+" sees every node as a member", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			out, _ := l.Exec(ctx, n, "curl", "-s", "--max-time", "1", url)
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "herald_l2_members ") {
					return line == want, line
				}
			}
			return false, "no herald_l2_members in " + url
		})
	}
}

// curlLoop is curl from a client in a shell loop (a request, then a
// pause), its results read as they come.
type curlLoop struct {
	cancel context.CancelFunc
	out    io.Closer
	done   chan struct{}
	mu     sync.Mutex
	res    []curlResult
}

type curlResult struct {
	at   time.Time // when the result arrived
	ok   bool
	text string // body (the node's name), or curl's exit status
}

// startCurlLoop curls ip:80 from host, pausing pause between requests,
// for at most d.
func startCurlLoop(t *testing.T, host string, ip netip.Addr, pause, d time.Duration) *curlLoop {
	t.Helper()
	script := fmt.Sprintf(`while :; do if b=$(curl -s -g --max-time 1 %s); then echo "ok $b"; else echo "fail curl-exit-$?"; fi; sleep %.3f; done`,
		lab.URL(ip, 80), pause.Seconds())
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := drv.Command(ctx, host, "timeout", strconv.Itoa(int(d.Seconds())), "sh", "-c", script)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// The shell and its curl are children of the command: cancelling
	// kills the whole process group, and stop closes the pipe too, so a
	// child that outlives its parent cannot keep the reader waiting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start the curl loop: %v", err)
	}
	l := &curlLoop{cancel: cancel, out: out, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			status, text, _ := strings.Cut(sc.Text(), " ")
			l.mu.Lock()
			l.res = append(l.res, curlResult{at: time.Now(), ok: status == "ok", text: strings.TrimSpace(text)})
			l.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	return l
}

// waitAnswers waits until the last n results are answers from node.
func (l *curlLoop) waitAnswers(t *testing.T, node string, n int, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("the curl loop gets %d answers in a row from %s", n, node), func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.res) < n {
			return false, fmt.Sprintf("%d results", len(l.res))
		}
		for _, r := range l.res[len(l.res)-n:] {
			if !r.ok || r.text != node {
				return false, fmt.Sprintf("last: %+v", l.res[len(l.res)-1])
			}
		}
		return true, ""
	})
}

// checkHandover fails t if the curl loop's results after t0 show a gap
// across what happened (what): a request whose connection is open at the
// moment the client switches to the new owner's MAC is reset by the new
// owner (it has no such connection; a kube-proxy would do the same): curl
// exits 56 or 52. That is the handover itself, one request at most; a
// request that finds nobody answering (curl 7, 28) is a gap. The loop
// must also reach the new owner.
func checkHandover(t *testing.T, res []curlResult, t0 time.Time, what, newOwner string) {
	t.Helper()
	failed, cut, total, fromNew := 0, 0, 0, 0
	var fails []string
	for _, r := range res {
		if r.at.Before(t0) {
			continue
		}
		total++
		switch {
		case !r.ok && (r.text == "curl-exit-56" || r.text == "curl-exit-52"):
			cut++
			fails = append(fails, fmt.Sprintf("%s after %s", r.text, r.at.Sub(t0).Round(time.Millisecond)))
		case !r.ok:
			failed++
			fails = append(fails, fmt.Sprintf("%s after %s", r.text, r.at.Sub(t0).Round(time.Millisecond)))
		case r.text == newOwner:
			fromNew++
		}
	}
	rate := float64(total) / time.Since(t0).Seconds()
	t.Logf("curl loop across %s: %d requests (%.0f/s), %d unanswered, %d reset at the switch, %d answered by %s %v", what, total, rate, failed, cut, fromNew, newOwner, fails)
	if failed > 0 || cut > 1 {
		t.Errorf("%d of %d requests of the curl loop went unanswered and %d were reset across %s: %v", failed, total, cut, what, fails)
	}
	if fromNew == 0 {
		t.Errorf("the curl loop never reached the new owner %s", newOwner)
	}
}

// stop ends the loop and returns its results.
func (l *curlLoop) stop() []curlResult {
	l.cancel()
	select {
	case <-l.done:
	case <-time.After(2 * time.Second):
		_ = l.out.Close()
		<-l.done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]curlResult(nil), l.res...)
}
