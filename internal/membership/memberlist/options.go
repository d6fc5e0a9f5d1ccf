package memberlist

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-logr/logr"
)

// Defaults, tuned for fast failure detection on a LAN (see the package
// documentation for the trade-off).
const (
	DefaultBindAddr          = "0.0.0.0"
	DefaultPort              = 7946
	DefaultProbeInterval     = 200 * time.Millisecond
	DefaultProbeTimeout      = 100 * time.Millisecond
	DefaultSuspicionMult     = 2
	DefaultGossipInterval    = 50 * time.Millisecond
	DefaultPushPullInterval  = 15 * time.Second
	DefaultReconnectInterval = 3 * time.Second
	DefaultLeaveTimeout      = time.Second
)

// Fixed tuning, not worth a flag.
const (
	// gossipToTheDead: how long gossip still goes to a member declared
	// dead, so that a member wrongly declared dead hears it and refutes.
	gossipToTheDead = 3 * time.Second
	// tcpTimeout bounds push/pull, pull requests and join attempts.
	tcpTimeout = 3 * time.Second
	// maxGossipMsg bounds a claims message sent over UDP gossip: it must
	// fit a 1400-byte packet next to memberlist's own messages and the
	// encryption overhead. Bigger changes are announced by a notice and
	// pulled over TCP.
	maxGossipMsg = 1000
	// retransmitMult: each gossip message is sent retransmitMult x
	// ceil(log10(N+1)) times (memberlist's default).
	retransmitMult = 4
	// maxQueued bounds the claims broadcast queue.
	maxQueued = 256
	// joinBackoff is the first retry delay after failed join attempts; it
	// doubles up to ReconnectInterval.
	joinBackoff = 250 * time.Millisecond
	// reconnectTries bounds the seeds tried per reconnect round.
	reconnectTries = 3
	// aloneAfter is the number of failed rounds of join attempts after
	// which a member with seeds considers itself alone (Synced).
	aloneAfter = 3
)

// Options configure a Membership. Zero durations and counts take the
// defaults above.
type Options struct {
	// NodeName is this member's name, the Kubernetes node name. Required.
	NodeName string
	// BindAddr is the IP address to listen on (UDP and TCP); default
	// 0.0.0.0.
	BindAddr string
	// BindPort is the port to listen on; default 7946. -1 picks a free
	// port (tests).
	BindPort int
	// AdvertiseAddr is the IP address other members reach us at; default:
	// BindAddr, or the first private address when binding to 0.0.0.0.
	AdvertiseAddr string
	// Join lists seed members as "ip:port" (or "host:port"). Our own
	// address may be in the list; it is skipped.
	Join []string
	// SecretKey enables gossip encryption (AES-GCM) with a 16, 24 or 32
	// byte key; nil disables it. Every member needs the same key.
	SecretKey []byte

	// Failure detection: see the package documentation.
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int
	GossipInterval   time.Duration
	PushPullInterval time.Duration
	// ReconnectInterval is how often seeds that are not members are joined
	// again (heals partitions); also the longest join retry delay.
	ReconnectInterval time.Duration
	// LeaveTimeout bounds the graceful leave on shutdown.
	LeaveTimeout time.Duration

	// Log receives our logs and memberlist's, bridged.
	Log logr.Logger
}

// ErrInvalidOptions is wrapped by every error New returns.
var ErrInvalidOptions = errors.New("invalid membership options")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
}

// withDefaults returns o with zero fields defaulted, or an error naming
// the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.NodeName == "" {
		return o, invalid("node name is required")
	}
	if len(o.NodeName) > maxNameLen {
		return o, invalid("node name longer than %d bytes", maxNameLen)
	}
	if o.BindAddr == "" {
		o.BindAddr = DefaultBindAddr
	}
	if _, err := netip.ParseAddr(o.BindAddr); err != nil {
		return o, invalid("bind address %q is not an IP address", o.BindAddr)
	}
	switch {
	case o.BindPort == 0:
		o.BindPort = DefaultPort
	case o.BindPort == -1:
		o.BindPort = 0 // memberlist: any free port
	case o.BindPort < 0 || o.BindPort > 65535:
		return o, invalid("bind port %d out of range", o.BindPort)
	}
	if o.AdvertiseAddr != "" {
		if _, err := netip.ParseAddr(o.AdvertiseAddr); err != nil {
			return o, invalid("advertise address %q is not an IP address", o.AdvertiseAddr)
		}
	}
	if err := validateSeeds(o.Join); err != nil {
		return o, err
	}
	switch len(o.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return o, invalid("secret key must be 16, 24 or 32 bytes, got %d", len(o.SecretKey))
	}

	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"probe interval", &o.ProbeInterval, DefaultProbeInterval},
		{"probe timeout", &o.ProbeTimeout, DefaultProbeTimeout},
		{"gossip interval", &o.GossipInterval, DefaultGossipInterval},
		{"push/pull interval", &o.PushPullInterval, DefaultPushPullInterval},
		{"reconnect interval", &o.ReconnectInterval, DefaultReconnectInterval},
		{"leave timeout", &o.LeaveTimeout, DefaultLeaveTimeout},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return o, invalid("%s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.ProbeTimeout >= o.ProbeInterval {
		return o, invalid("probe timeout %v must be shorter than the probe interval %v", o.ProbeTimeout, o.ProbeInterval)
	}
	switch {
	case o.SuspicionMult == 0:
		o.SuspicionMult = DefaultSuspicionMult
	case o.SuspicionMult < 1:
		return o, invalid("suspicion multiplier %d must be at least 1", o.SuspicionMult)
	}
	return o, nil
}

func validateSeeds(seeds []string) error {
	for _, s := range seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return invalid("join address %q is not host:port", s)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return invalid("join address %q has an invalid port", s)
		}
	}
	return nil
}
