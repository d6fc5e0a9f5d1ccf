package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Capture: tcpdump on a host, watching the ARP and NDP traffic a client
// sees, so that a test can tell which node announced an address and when.

// L2PacketKind is the kind of a captured ARP or NDP packet.
type L2PacketKind string

const (
	ARPRequest          L2PacketKind = "arp-request"
	ARPReply            L2PacketKind = "arp-reply"
	NeighborSolicit     L2PacketKind = "ns"
	NeighborAdvertise   L2PacketKind = "na"
	OtherL2PacketKind   L2PacketKind = "other"
	broadcastMAC                     = "ff:ff:ff:ff:ff:ff"
	allNodesMulticastV6              = "ff02::1"
)

// L2Packet is one packet of tcpdump's `-n -e -tt` output.
type L2Packet struct {
	Time           time.Time
	SrcMAC, DstMAC string // lower case
	Kind           L2PacketKind
	// Sender is the ARP sender address (who-has T tell Sender; Sender
	// is-at MAC); Target the ARP target or the NDP target.
	Sender, Target netip.Addr
	// Gratuitous: an announcement nobody asked for: an ARP request for
	// the sender's own address, an ARP reply sent to the broadcast
	// address, or a neighbor advertisement to all nodes (ff02::1).
	Gratuitous bool
}

// Announces reports whether p is a gratuitous ARP or an unsolicited
// neighbor advertisement for ip.
func (p L2Packet) Announces(ip netip.Addr) bool {
	if !p.Gratuitous {
		return false
	}
	switch p.Kind {
	case ARPRequest, ARPReply:
		return p.Sender == ip
	case NeighborAdvertise:
		return p.Target == ip
	}
	return false
}

var (
	tcpdumpLine = regexp.MustCompile(`^(\d+)\.(\d{6}) ([0-9a-f:]{17}) > ([0-9a-f:]{17}), ethertype (\S+) \(0x[0-9a-f]+\), length \d+: (.*)$`)
	arpWhoHas   = regexp.MustCompile(`^Request who-has (\S+)(?: \([^)]*\))? tell (\S+),`)
	arpIsAt     = regexp.MustCompile(`^Reply (\S+) is-at ([0-9a-f:]{17}),`)
	ndpMessage  = regexp.MustCompile(`^(\S+) > (\S+): ICMP6, neighbor (advertisement|solicitation), (?:tgt is|who has) ([^,\s]+),`)
)

// ParseTcpdumpLine parses one line of `tcpdump -l -n -e -tt` output; ok is
// false for lines that are not a packet (tcpdump's own messages).
func ParseTcpdumpLine(line string) (L2Packet, bool) {
	m := tcpdumpLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return L2Packet{}, false
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	usec, _ := strconv.ParseInt(m[2], 10, 64)
	p := L2Packet{
		Time:   time.Unix(sec, usec*1000),
		SrcMAC: m[3], DstMAC: m[4],
		Kind: OtherL2PacketKind,
	}
	rest := m[6]
	switch m[5] {
	case "ARP":
		if a := arpWhoHas.FindStringSubmatch(rest); a != nil {
			p.Kind = ARPRequest
			p.Target, _ = netip.ParseAddr(a[1])
			p.Sender, _ = netip.ParseAddr(a[2])
			p.Gratuitous = p.Sender.IsValid() && p.Sender == p.Target
		} else if a := arpIsAt.FindStringSubmatch(rest); a != nil {
			p.Kind = ARPReply
			p.Sender, _ = netip.ParseAddr(a[1])
			p.Gratuitous = p.DstMAC == broadcastMAC
		}
	case "IPv6":
		if a := ndpMessage.FindStringSubmatch(rest); a != nil {
			p.Target, _ = netip.ParseAddr(a[4])
			if a[3] == "advertisement" {
				p.Kind = NeighborAdvertise
				p.Gratuitous = a[2] == allNodesMulticastV6
			} else {
				p.Kind = NeighborSolicit
			}
		}
	}
	return p, true
}

// AnnouncementFilter is a tcpdump filter for the gratuitous ARP packets
// (IPv4) or the neighbor advertisements (IPv6) about ip only, so that a
// capture during a failover of thousands of addresses stays small.
func AnnouncementFilter(ip netip.Addr) string {
	if ip.Is4() {
		b := ip.As4()
		// ARP sender protocol address, bytes 14-17 of the ARP header.
		return fmt.Sprintf("arp and arp[14:4] = 0x%02x%02x%02x%02x", b[0], b[1], b[2], b[3])
	}
	// ICMPv6 type 136 right after a plain IPv6 header (NDP packets carry
	// no extension header), target address at bytes 8-23 of it.
	b := ip.As16()
	f := "icmp6 and ip6[40] = 136"
	for i := 0; i < 16; i += 4 {
		f += fmt.Sprintf(" and ip6[%d:4] = 0x%02x%02x%02x%02x", 48+i, b[i], b[i+1], b[i+2], b[i+3])
	}
	return f
}

// tcpdump is tcpdump running on a lab host, what parse makes of each
// line of its output collected as it comes.
type tcpdump[T any] struct {
	cancel context.CancelFunc
	proc   *os.Process
	done   chan struct{}

	mu  sync.Mutex
	got []T
	err error
}

// ErrCaptureNotReady says tcpdump did not start listening in time.
var ErrCaptureNotReady = errors.New("tcpdump did not start listening")

// startTcpdump starts `tcpdump -l -n -tt ARGS` on host, bounded by d
// (timeout), collects what parse accepts of each line it prints, and
// returns once tcpdump listens.
func startTcpdump[T any](ctx context.Context, drv Driver, host string, d time.Duration, parse func(string) (T, bool), args ...string) (*tcpdump[T], error) {
	secs := strconv.Itoa(max(1, int(d.Seconds()+0.999)))
	argv := append([]string{"timeout", "-s", "INT", secs, "tcpdump", "-l", "-n", "-tt"}, args...)
	pp, err := startPiped(ctx, drv, host, true, argv...)
	if err != nil {
		return nil, err
	}
	cmd, stdout, stderr, cancel := pp.cmd, pp.stdout, pp.stderr, pp.cancel
	t := &tcpdump[T]{cancel: cancel, proc: cmd.Process, done: make(chan struct{})}
	listening := make(chan struct{})
	var errText strings.Builder
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, "listening on") {
				once.Do(func() { close(listening) })
				continue
			}
			if errText.Len() < 2000 {
				errText.WriteString(l + "\n")
			}
		}
	})
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := parse(sc.Text()); ok {
				t.mu.Lock()
				t.got = append(t.got, v)
				t.mu.Unlock()
			}
		}
	})
	exited := make(chan struct{})
	go func() {
		wg.Wait() // both pipes drained before Wait closes them
		err := cmd.Wait()
		t.mu.Lock()
		if err != nil && !isTimeoutExit(err) {
			t.err = fmt.Errorf("tcpdump on %s: %w: %s", host, err, strings.TrimSpace(errText.String()))
		}
		t.mu.Unlock()
		close(exited)
		close(t.done)
	}()
	select {
	case <-listening:
		return t, nil
	case <-exited:
		cancel()
		return nil, fmt.Errorf("%w on %s: %s", ErrCaptureNotReady, host, strings.TrimSpace(errText.String()))
	case <-time.After(10 * time.Second):
		_ = t.stop()
		return nil, fmt.Errorf("%w on %s within 10s", ErrCaptureNotReady, host)
	case <-ctx.Done():
		_ = t.stop()
		return nil, ctx.Err()
	}
}

// isTimeoutExit reports whether err is timeout(1)'s exit status 124 (the
// capture ran its full time) or tcpdump's own end by SIGINT.
func isTimeoutExit(err error) bool {
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		c := ee.ExitCode()
		return c == 124 || c == 130 || c == -1
	}
	return false
}

// collected returns what was collected so far.
func (t *tcpdump[T]) collected() []T {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.got)
}

// stop ends tcpdump (SIGINT, so it flushes), waits until its output is
// read, and returns the error it failed with, if any.
func (t *tcpdump[T]) stop() error {
	_ = t.proc.Signal(syscall.SIGINT)
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		t.cancel()
		<-t.done
	}
	t.cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Capture is tcpdump running on a host, its ARP and NDP packets collected
// as they come.
type Capture struct{ t *tcpdump[L2Packet] }

// StartCapture starts `tcpdump -l -n -e -tt -c count -i eth0 FILTER` on host,
// bounded by d (timeout), and returns once tcpdump listens.
func StartCapture(ctx context.Context, drv Driver, host, filter string, count int, d time.Duration) (*Capture, error) {
	return StartCaptureOn(ctx, drv, host, "eth0", filter, count, d)
}

// StartCaptureOn is StartCapture on host's interface ifname.
func StartCaptureOn(ctx context.Context, drv Driver, host, ifname, filter string, count int, d time.Duration) (*Capture, error) {
	t, err := startTcpdump(ctx, drv, host, d, ParseTcpdumpLine, "-e", "-c", strconv.Itoa(count), "-i", ifname, filter)
	if err != nil {
		return nil, err
	}
	return &Capture{t}, nil
}

// Packets returns the packets captured so far.
func (c *Capture) Packets() []L2Packet { return c.t.collected() }

// Stop ends tcpdump and returns every packet it captured, and the error
// it failed with, if any.
func (c *Capture) Stop() ([]L2Packet, error) {
	err := c.t.stop()
	return c.Packets(), err
}

// FirstAnnouncement returns the first packet after t0 that announces ip
// from mac (any MAC when mac is empty).
func FirstAnnouncement(packets []L2Packet, ip netip.Addr, mac string, t0 time.Time) (L2Packet, bool) {
	mac = strings.ToLower(mac)
	for _, p := range packets {
		if p.Time.Before(t0) || !p.Announces(ip) || mac != "" && p.SrcMAC != mac {
			continue
		}
		return p, true
	}
	return L2Packet{}, false
}

// piped is a command started on a lab host with its output piped.
type piped struct {
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser // stderr nil unless asked for
	cancel         context.CancelFunc
}

// startPiped starts argv on host under a context of its own (cancel ends
// it), its stdout (and with withStderr its stderr) piped.
func startPiped(ctx context.Context, drv Driver, host string, withStderr bool, argv ...string) (*piped, error) {
	ctx, cancel := context.WithCancel(ctx)
	p := &piped{cancel: cancel}
	var err error
	if p.cmd, err = drv.Command(ctx, host, argv...); err == nil {
		if p.stdout, err = p.cmd.StdoutPipe(); err == nil && withStderr {
			p.stderr, err = p.cmd.StderrPipe()
		}
	}
	if err == nil {
		err = p.cmd.Start()
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start %s on %s: %w", argv[0], host, err)
	}
	return p, nil
}
