package speaker

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/internal/announce/ifaces"
)

func owned(pairs ...string) map[netip.Addr]L2Announcement {
	out := map[netip.Addr]L2Announcement{}
	for i := 0; i < len(pairs); i += 2 {
		ip := netip.MustParseAddr(pairs[i])
		out[ip] = L2Announcement{IP: ip, Owner: pairs[i+1]}
	}
	return out
}

// ipvsState is a node as kube-proxy's IPVS mode leaves it: the Service
// addresses on kube-ipvs0, eth0 answering ARP with arp_ignore.
func ipvsState(arpIgnore int, addrs ...string) ifaces.ARPState {
	st := ifaces.ARPState{Addrs: map[netip.Addr]ifaces.AddrPlace{}, Ignore: map[string]int{"eth0": arpIgnore, "eth1": arpIgnore}}
	for _, a := range addrs {
		st.Addrs[netip.MustParseAddr(a)] = ifaces.AddrPlace{Iface: "kube-ipvs0"}
	}
	return st
}

func TestKernelARPConflicts(t *testing.T) {
	desired := owned("10.0.0.1", "n1", "10.0.0.2", "n2", "10.0.0.3", "n2", "fd00::1", "n2")
	all := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1"}
	conflict := func(ip, owner string) KernelARPConflict {
		return KernelARPConflict{IP: netip.MustParseAddr(ip), Owner: owner, Iface: "eth0", Holder: "kube-ipvs0"}
	}
	for _, c := range []struct {
		name string
		ifs  []string
		st   ifaces.ARPState
		want []KernelARPConflict
	}{
		{"strict ARP", []string{"eth0"}, ipvsState(1, all...), nil},
		{"arp_ignore 0: the others' addresses, sorted, IPv4 only", []string{"eth0", "eth1"}, ipvsState(0, all...),
			[]KernelARPConflict{conflict("10.0.0.2", "n2"), conflict("10.0.0.3", "n2")}},
		{"addresses not on the node", []string{"eth0"}, ipvsState(0, "10.0.0.1"), nil},
		{"no interface", nil, ipvsState(0, all...), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := KernelARPConflicts(desired, "n1", c.ifs, c.st)
			if diff := cmp.Diff(c.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestKernelARPCheck: a conflict is told once (Warning on the Node, with
// the fix), more of the same kind tell nothing, another kind tells again,
// their end tells a Normal event; the gauge follows every check; a read
// error changes nothing.
func TestKernelARPCheck(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	st := ipvsState(0)
	var readErr error
	k := NewKernelARPCheck(KernelARPOptions{
		NodeName:   "n1",
		Interfaces: func() []string { return []string{"eth0"} },
		Read:       func([]string) (ifaces.ARPState, error) { return st, readErr },
		Node:       func() runtime.Object { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}} },
		Recorder:   rec,
		Gauge:      gauge,
		Log:        logr.Discard(),
	})
	step := func(name string, wantGauge float64, wantEvent string) {
		t.Helper()
		k.Check()
		if got := testutil.ToFloat64(gauge); got != wantGauge {
			t.Errorf("%s: gauge %v, want %v", name, got, wantGauge)
		}
		got := drainEvents(rec)
		switch {
		case wantEvent == "" && len(got) > 0:
			t.Errorf("%s: events %q, want none", name, got)
		case wantEvent != "" && (len(got) != 1 || !strings.HasPrefix(got[0], wantEvent)):
			t.Errorf("%s: events %q, want one %q", name, got, wantEvent)
		}
	}
	step("no pass yet", 0, "")
	k.Update(owned("10.0.0.1", "n2"))
	step("strict ARP", 0, "")
	st = ipvsState(0, "10.0.0.1")
	step("arp_ignore 0", 1, "Warning KernelAnswersARP the kernel of node n1 answers ARP")
	if !strings.Contains(k.told, "addresses on kube-ipvs0 answered on eth0 (arp_ignore 0)") || !strings.Contains(k.told, "arp_ignore=1") {
		t.Errorf("summary %q: want where and what to set", k.told)
	}
	st = ipvsState(0, "10.0.0.1", "10.0.0.2")
	k.Update(owned("10.0.0.1", "n2", "10.0.0.2", "n3"))
	step("one more of the same kind", 2, "")
	st.Ignore["eth0"] = 4
	step("another setting", 2, "Warning KernelAnswersARP")
	readErr = errors.New("boom")
	step("read error", 2, "")
	readErr = nil
	st = ipvsState(1, "10.0.0.1", "10.0.0.2")
	step("strictARP set", 0, "Normal KernelARPResolved")
	step("still fine", 0, "")
}

func TestKernelARPUpdateKicks(t *testing.T) {
	k := NewKernelARPCheck(KernelARPOptions{NodeName: "n1"})
	k.Update(owned("10.0.0.1", "n1", "fd00::1", "n2"))
	select {
	case <-k.kick:
		t.Fatal("kicked with no IPv4 address of another node")
	default:
	}
	k.Update(owned("10.0.0.1", "n1", "10.0.0.2", "n2"))
	k.Update(owned("10.0.0.1", "n1", "10.0.0.2", "n2")) // does not block
	select {
	case <-k.kick:
	default:
		t.Fatal("not kicked for an IPv4 address of another node")
	}
}
