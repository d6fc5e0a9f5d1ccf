package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/internal/announce/ifaces"
	"github.com/herald-lb/herald/internal/kube"
)

// KernelARPCheck looks for KernelARPConflicts on this node: after layer-2
// passes that see addresses owned by other nodes (at most every
// MinInterval) and every Interval, since a changed arp_ignore sends no
// notification. It keeps their number in Gauge and, when their kind
// changes (KernelARPSummary), tells the log and the Node's events: a
// Warning KernelAnswersARP, and a Normal KernelARPResolved once they are
// gone. It only reports: the kernel's settings are the node's owner's.
type KernelARPCheck struct {
	KernelARPOptions

	desired atomic.Pointer[map[netip.Addr]L2Announcement]
	kick    chan struct{}
	told    string // the summary last told, "" for none
}

// KernelARPOptions configure a KernelARPCheck.
type KernelARPOptions struct {
	NodeName string
	// Interfaces returns the interfaces ARP requests reach.
	Interfaces func() []string
	// Read reads the kernel's state for them; default
	// ifaces.ReadARPState.
	Read func(ifs []string) (ifaces.ARPState, error)
	// Node returns this node's Node object, for the events.
	Node     func() runtime.Object
	Recorder kube.EventRecorder
	Gauge    prometheus.Gauge
	Log      logr.Logger
	// Interval and MinInterval default to DefaultKernelARPInterval and
	// DefaultKernelARPMinInterval.
	Interval, MinInterval time.Duration
}

// Defaults of KernelARPCheck.
const (
	DefaultKernelARPInterval    = 30 * time.Second
	DefaultKernelARPMinInterval = 5 * time.Second
)

// NewKernelARPCheck returns c ready to Run.
func NewKernelARPCheck(o KernelARPOptions) *KernelARPCheck {
	k := &KernelARPCheck{KernelARPOptions: o}
	if k.Interval <= 0 {
		k.Interval = DefaultKernelARPInterval
	}
	if k.MinInterval <= 0 {
		k.MinInterval = DefaultKernelARPMinInterval
	}
	if k.Read == nil {
		k.Read = ifaces.ReadARPState
	}
	k.kick = make(chan struct{}, 1)
	return k
}

// Update records a pass's desired announcements (read only from then on)
// and asks for a check when another node owns an IPv4 address of them.
func (k *KernelARPCheck) Update(desired map[netip.Addr]L2Announcement) {
	k.desired.Store(&desired)
	for ip, a := range desired {
		if ip.Is4() && a.Owner != k.NodeName {
			select {
			case k.kick <- struct{}{}:
			default:
			}
			return
		}
	}
}

// Run checks until ctx ends.
func (k *KernelARPCheck) Run(ctx context.Context) error {
	every := time.NewTicker(k.Interval)
	defer every.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-every.C:
		case <-k.kick:
		}
		k.Check()
		// Passes come many a second while Services are created: no
		// check before MinInterval.
		pause := time.NewTimer(k.MinInterval)
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil
		case <-pause.C:
		}
	}
}

// Check looks once, and reports.
func (k *KernelARPCheck) Check() {
	var desired map[netip.Addr]L2Announcement
	if p := k.desired.Load(); p != nil {
		desired = *p
	}
	var conflicts []KernelARPConflict
	if len(desired) > 0 {
		ifs := k.Interfaces()
		st, err := k.Read(ifs)
		if err != nil {
			k.Log.Error(err, "reading the kernel's ARP settings")
			return
		}
		conflicts = KernelARPConflicts(desired, k.NodeName, ifs, st)
	}
	if k.Gauge != nil {
		k.Gauge.Set(float64(len(conflicts)))
	}
	summary := KernelARPSummary(k.NodeName, conflicts)
	if summary == k.told {
		return
	}
	k.told = summary
	if summary == "" {
		k.Log.Info("the kernel no longer answers ARP for addresses other nodes own", "node", k.NodeName)
		k.event(corev1.EventTypeNormal, "KernelARPResolved", fmt.Sprintf("the kernel of node %s no longer answers ARP for layer-2 addresses that other nodes own", k.NodeName))
		return
	}
	c := conflicts[0]
	msg := fmt.Sprintf("%s (%d addresses, e.g. %s owned by %s)", summary, len(conflicts), c.IP, c.Owner)
	k.Log.Error(nil, msg, "node", k.NodeName, "ip", c.IP.String(), "iface", c.Iface)
	k.event(corev1.EventTypeWarning, "KernelAnswersARP", msg)
}

func (k *KernelARPCheck) event(typ, reason, msg string) {
	if k.Recorder == nil || k.Node == nil {
		return
	}
	k.Recorder.Event(k.Node(), typ, reason, msg)
}
