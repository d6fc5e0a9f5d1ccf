package lab

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"time"
)

// BGPSegment is one TCP segment of a BGP session as tcpdump prints it:
// what a benchmark needs to tell when a node's first UPDATE reached the
// router, and which side opened a session.
type BGPSegment struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	// Flags as tcpdump prints them: "S" (the opening SYN), "S.", ".",
	// "P.", "F.", "R.".
	Flags string
	// Len is the TCP payload in bytes.
	Len int
}

// keepaliveLen is the size of a BGP KEEPALIVE: its header alone.
const keepaliveLen = 19

// Opening reports whether s is the first SYN of a connection.
func (s BGPSegment) Opening() bool { return s.Flags == "S" }

// Message reports whether s carries more than a KEEPALIVE: an OPEN, an
// UPDATE or a NOTIFICATION.
func (s BGPSegment) Message() bool { return s.Len > keepaliveLen }

var bgpTcpdumpLine = regexp.MustCompile(`^(\d+)\.(\d{6}) IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\].*length (\d+)`)

// ParseBGPTcpdumpLine parses one line of `tcpdump -l -n -tt -i IF tcp`
// output; ok is false for anything else.
func ParseBGPTcpdumpLine(line string) (BGPSegment, bool) {
	m := bgpTcpdumpLine.FindStringSubmatch(line)
	if m == nil {
		return BGPSegment{}, false
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	usec, _ := strconv.ParseInt(m[2], 10, 64)
	src, err1 := netip.ParseAddr(m[3])
	dst, err2 := netip.ParseAddr(m[5])
	sport, err3 := strconv.ParseUint(m[4], 10, 16)
	dport, err4 := strconv.ParseUint(m[6], 10, 16)
	n, err5 := strconv.Atoi(m[8])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
		return BGPSegment{}, false
	}
	return BGPSegment{
		Time:  time.Unix(sec, usec*1000),
		Src:   netip.AddrPortFrom(src, uint16(sport)),
		Dst:   netip.AddrPortFrom(dst, uint16(dport)),
		Flags: m[7],
		Len:   n,
	}, true
}

// BGPCapture is tcpdump on a host's eth0 collecting the segments of its
// BGP sessions (TCP port 179) as they pass: in immediate mode, since a
// benchmark looks for them as soon as the router has acted on them.
type BGPCapture struct{ t *tcpdump[BGPSegment] }

// StartBGPCapture starts capturing on host for at most d and returns
// once tcpdump listens.
func StartBGPCapture(ctx context.Context, drv Driver, host string, d time.Duration) (*BGPCapture, error) {
	t, err := startTcpdump(ctx, drv, host, d, ParseBGPTcpdumpLine, "--immediate-mode", "-i", "eth0", "tcp port 179")
	if err != nil {
		return nil, err
	}
	return &BGPCapture{t}, nil
}

// Segments returns the segments captured so far.
func (c *BGPCapture) Segments() []BGPSegment { return c.t.collected() }

// Stop ends the capture; it returns the error tcpdump failed with, if any.
func (c *BGPCapture) Stop() error { return c.t.stop() }

// FirstBGP returns the first segment at or after t0 that match accepts.
func FirstBGP(segs []BGPSegment, t0 time.Time, match func(BGPSegment) bool) (BGPSegment, bool) {
	for _, s := range segs {
		if !s.Time.Before(t0) && match(s) {
			return s, true
		}
	}
	return BGPSegment{}, false
}
