package allocator

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/herald-lb/herald/internal/model"
)

var benchPools = []struct {
	name string
	cidr string
	fam  model.Family
}{
	{"v4-/8", "10.0.0.0/8", model.IPv4},
	{"v6-/64", "2001:db8::/64", model.IPv6},
}

func benchConfig(cidr string) *model.Config {
	p := netip.MustParsePrefix(cidr)
	return &model.Config{
		Pools: map[string]*model.Pool{"bench": {
			Name: "bench", AutoAssign: true,
			Ranges: []model.Range{{First: p.Addr(), Last: lastOf(p)}},
		}},
		PoolOrder: []string{"bench"},
	}
}

// benchRequests builds the requests filling n addresses: one Service per
// address, or two Services sharing each address under one key.
func benchRequests(n int, fam model.Family, sharing bool) []model.Request {
	per := 1
	if sharing {
		per = 2
	}
	reqs := make([]model.Request, 0, n*per)
	fams := []model.Family{fam}
	for i := range n {
		for j := range per {
			r := model.Request{
				Service:  model.ServiceKey{Namespace: "bench", Name: fmt.Sprintf("svc-%d-%d", i, j)},
				Families: fams,
			}
			if sharing {
				r.SharingKey = fmt.Sprintf("key-%d", i)
				r.Ports = []model.Port{{Protocol: model.TCP, Port: uint16(80 + j)}}
			}
			reqs = append(reqs, r)
		}
	}
	return reqs
}

// BenchmarkAssignRelease measures one Assign of a new Service plus its
// Release, with `taken` addresses already in use. The fill leaves one
// free address every 64 so the run tree holds taken/63 runs, not one.
// With sharing=yes every taken address is held by two Services under
// one key, and the measured Service joins one of them (a third port).
func BenchmarkAssignRelease(b *testing.B) {
	for _, bp := range benchPools {
		for _, taken := range []int{10_000, 100_000} {
			for _, sharing := range []bool{false, true} {
				name := fmt.Sprintf("pool=%s/taken=%dk/sharing=%s", bp.name, taken/1000, map[bool]string{false: "no", true: "yes"}[sharing])
				b.Run(name, func(b *testing.B) {
					a := New()
					a.SetConfig(benchConfig(bp.cidr))
					fill := taken + taken/63 + 1
					reqs := benchRequests(fill, bp.fam, sharing)
					for _, r := range reqs {
						if _, err := a.Assign(r); err != nil {
							b.Fatal(err)
						}
					}
					per := len(reqs) / fill
					for i := 0; i < fill; i += 64 {
						for j := range per {
							a.Release(reqs[i*per+j].Service)
						}
					}
					// The measured Services, built beforehand.
					probes := make([]model.Request, 1024)
					for i := range probes {
						probes[i] = model.Request{
							Service:  model.ServiceKey{Namespace: "bench", Name: fmt.Sprintf("probe-%d", i)},
							Families: []model.Family{bp.fam},
						}
						if sharing {
							probes[i].SharingKey = fmt.Sprintf("key-%d", (i*97)%fill|1)
							probes[i].Ports = []model.Port{{Protocol: model.TCP, Port: 443}}
						}
					}
					// Finish collecting the fill's garbage so that no GC cycle
					// started by the setup runs during the measurement.
					runtime.GC()
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						r := probes[i%len(probes)]
						if _, err := a.Assign(r); err != nil {
							b.Fatal(err)
						}
						a.Release(r.Service)
					}
				})
			}
		}
	}
}

// BenchmarkMemoryPerService fills 100k Services and reports the heap the
// allocator keeps per Service (B/svc, from HeapInuse; live-B/svc from
// HeapAlloc). The requests are built before measuring: the caller's
// strings, which the allocator may keep, are not counted; everything the
// allocator allocates is.
func BenchmarkMemoryPerService(b *testing.B) {
	const n = 100_000
	for _, bp := range benchPools {
		for _, sharing := range []bool{false, true} {
			name := fmt.Sprintf("pool=%s/sharing=%s", bp.name, map[bool]string{false: "no", true: "yes"}[sharing])
			b.Run(name, func(b *testing.B) {
				addrsNeeded := n
				if sharing {
					addrsNeeded = n / 2
				}
				reqs := benchRequests(addrsNeeded, bp.fam, sharing)
				cfg := benchConfig(bp.cidr)
				var inuse, live float64
				runs := 0
				for b.Loop() {
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					a := New()
					a.SetConfig(cfg)
					for _, r := range reqs {
						if _, err := a.Assign(r); err != nil {
							b.Fatal(err)
						}
					}
					runtime.GC()
					runtime.ReadMemStats(&after)
					if a.ServiceCount() != len(reqs) {
						b.Fatalf("%d Services", a.ServiceCount())
					}
					runtime.KeepAlive(a)
					inuse += float64(after.HeapInuse) - float64(before.HeapInuse)
					live += float64(after.HeapAlloc) - float64(before.HeapAlloc)
					runs++
				}
				runtime.KeepAlive(reqs)
				b.ReportMetric(inuse/float64(runs)/float64(len(reqs)), "B/svc")
				b.ReportMetric(live/float64(runs)/float64(len(reqs)), "live-B/svc")
			})
		}
	}
}
