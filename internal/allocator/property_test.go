package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/model"
)

// refPool is a pool of the reference model: its assignable addresses
// listed in order, per family.
type refPool struct {
	name  string
	addrs map[model.Family][]netip.Addr
}

// refModel is a naive allocator: linear scans over every address and
// every Service. It implements the rules for the subset of requests the
// property test generates: SingleStack, optional pool annotation,
// optional sharing key with TCP ports, Cluster traffic policy.
type refModel struct {
	pools []refPool // autoAssign order
	svcs  map[model.ServiceKey]*refSvc
}

type refSvc struct {
	req model.Request
	got model.Assignment
}

func (m *refModel) holders(ip netip.Addr) []*refSvc {
	var out []*refSvc
	for _, s := range m.svcs {
		if slices.Contains(s.got.IPs, ip) {
			out = append(out, s)
		}
	}
	return out
}

func (m *refModel) mayShare(ip netip.Addr, r model.Request) bool {
	for _, h := range m.holders(ip) {
		if r.SharingKey == "" || h.req.SharingKey != r.SharingKey {
			return false
		}
		for _, p := range r.Ports {
			if slices.Contains(h.req.Ports, p) {
				return false
			}
		}
	}
	return true
}

// assign returns the assignment and the sentinel error the allocator
// must give.
func (m *refModel) assign(r model.Request) (model.Assignment, error) {
	if s := m.svcs[r.Service]; s != nil {
		return s.got, nil // the property test only repeats identical requests
	}
	fam := model.IPv4
	if len(r.Families) > 0 {
		fam = r.Families[0]
	}
	var errKind error = ErrFamily
	for _, p := range m.pools {
		if r.Pool != "" && p.name != r.Pool {
			continue
		}
		list := p.addrs[fam]
		if len(list) == 0 {
			continue
		}
		pick := netip.Addr{}
		if r.SharingKey != "" {
			for _, ip := range list {
				hs := m.holders(ip)
				if len(hs) > 0 && hs[0].req.SharingKey == r.SharingKey && m.mayShare(ip, r) {
					pick = ip
					break
				}
			}
		}
		if !pick.IsValid() {
			for _, ip := range list {
				if len(m.holders(ip)) == 0 {
					pick = ip
					break
				}
			}
		}
		if !pick.IsValid() {
			errKind = ErrPoolExhausted
			continue
		}
		got := model.Assignment{Pool: p.name, IPs: []netip.Addr{pick}}
		m.svcs[r.Service] = &refSvc{req: r, got: got}
		return got, nil
	}
	return model.Assignment{}, errKind
}

func enumerate(t *testing.T, p *model.Pool) map[model.Family][]netip.Addr {
	out := map[model.Family][]netip.Addr{}
	for _, r := range p.Ranges {
		for ip := r.First; ip.Compare(r.Last) <= 0; ip = ip.Next() {
			if p.Contains(ip) {
				out[model.FamilyOf(ip)] = append(out[model.FamilyOf(ip)], ip)
			}
		}
	}
	return out
}

// TestAgainstReferenceModel plays a long random, deterministic sequence
// of assignments, releases, reconfigurations and controller restarts on
// small pools and checks every answer against the naive model.
func TestAgainstReferenceModel(t *testing.T) {
	pools := []*model.Pool{
		buggy(pl(t, "ds", "10.0.0.250-10.0.1.5", "10.0.1.9", "2001:db8::fffe-2001:db8::1:3")),
		pl(t, "v4b", "10.0.2.0/30"),
	}
	cfg := conf(pools...)
	m := &refModel{svcs: map[model.ServiceKey]*refSvc{}}
	for _, p := range pools {
		m.pools = append(m.pools, refPool{name: p.Name, addrs: enumerate(t, p)})
	}
	a := newAlloc(t, cfg)
	rnd := rand.New(rand.NewPCG(42, 7))
	keys := []string{"", "", "k1", "k2"}
	var names []model.ServiceKey
	for i := range 40 {
		names = append(names, key(fmt.Sprintf("ns%d/s%d", i%3, i)))
	}
	reqFor := map[model.ServiceKey]model.Request{}
	newReq := func(k model.ServiceKey) model.Request {
		r := model.Request{Service: k}
		switch rnd.IntN(4) {
		case 0:
			r.Families = []model.Family{model.IPv6}
		case 1:
			r.Families = []model.Family{model.IPv4}
		}
		if rnd.IntN(5) == 0 {
			r.Pool = "v4b"
		}
		if r.SharingKey = keys[rnd.IntN(len(keys))]; r.SharingKey != "" {
			r.Ports = tcp(uint16(80 + rnd.IntN(3)))
		}
		return r
	}

	const ops = 6000
	for i := range ops {
		k := names[rnd.IntN(len(names))]
		switch op := rnd.IntN(100); {
		case op < 60:
			r, held := reqFor[k]
			if !held {
				r = newReq(k)
			}
			want, wantErr := m.assign(r)
			got, err := a.Assign(r)
			if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
				t.Fatalf("op %d: Assign(%+v) error = %v, want %v", i, r, err, wantErr)
			}
			if d := gocmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
				t.Fatalf("op %d: Assign(%+v) (-want +got):\n%s", i, r, d)
			}
			if err == nil {
				reqFor[k] = r
			}
		case op < 95:
			_, want := m.svcs[k]
			delete(m.svcs, k)
			delete(reqFor, k)
			if got := a.Release(k); got != want {
				t.Fatalf("op %d: Release(%v) = %v, want %v", i, k, got, want)
			}
		case op < 97:
			if d := a.SetConfig(conf(pools...)); len(d) != 0 {
				t.Fatalf("op %d: same config displaced %v", i, d)
			}
		default:
			// Controller restart: a new allocator learns every Service
			// from its status, in key order, and must give the same.
			a = newAlloc(t, cfg)
			for _, k := range slices.SortedFunc(maps.Keys(reqFor), func(x, y model.ServiceKey) int {
				return cmp.Compare(x.String(), y.String())
			}) {
				r := reqFor[k]
				r.Current = m.svcs[k].got.IPs
				got, err := a.Assign(r)
				if err != nil {
					t.Fatalf("op %d: restore %v: %v", i, k, err)
				}
				if d := gocmp.Diff(m.svcs[k].got, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
					t.Fatalf("op %d: restore %v (-want +got):\n%s", i, k, d)
				}
			}
		}
		if i%50 == 0 {
			checkInvariants(t, a)
			for _, p := range m.pools {
				st := a.Stats(p.name)
				for fam, fs := range map[model.Family]FamilyStats{model.IPv4: st.IPv4, model.IPv6: st.IPv6} {
					var inUse uint64
					for _, ip := range p.addrs[fam] {
						if len(m.holders(ip)) > 0 {
							inUse++
						}
					}
					if fs.InUse != inUse || fs.Capacity != uint64(len(p.addrs[fam])) {
						t.Fatalf("op %d: pool %s %v stats %+v, want InUse %d Capacity %d", i, p.name, fam, fs, inUse, len(p.addrs[fam]))
					}
				}
			}
		}
	}
	if a.ServiceCount() != len(m.svcs) {
		t.Fatalf("ServiceCount = %d, want %d", a.ServiceCount(), len(m.svcs))
	}
}
