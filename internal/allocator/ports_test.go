package allocator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-lb/herald/internal/model"
)

func TestPortSet(t *testing.T) {
	udp := func(p uint16) model.Port { return model.Port{Protocol: model.UDP, Port: p} }
	sctp := func(p uint16) model.Port { return model.Port{Protocol: model.SCTP, Port: p} }
	for _, tc := range []struct {
		name  string
		ports []model.Port // sorted
		other []model.Port
		clash *model.Port
	}{
		{name: "empty", other: tcp(80)},
		{name: "one", ports: tcp(65535), other: tcp(65535), clash: &tcp(65535)[0]},
		{name: "two", ports: []model.Port{tcp(80)[0], udp(53)}, other: []model.Port{udp(53)}, clash: &[]model.Port{udp(53)}[0]},
		{name: "two apart", ports: []model.Port{tcp(0)[0], sctp(65535)}, other: []model.Port{udp(0), sctp(65534)}},
		{name: "many", ports: []model.Port{tcp(22)[0], tcp(80)[0], udp(53), sctp(9)}, other: []model.Port{tcp(23)[0], sctp(9)}, clash: &[]model.Port{sctp(9)}[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := makePortSet(tc.ports)
			if d := cmp.Diff(tc.ports, s.list(), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("list (-want +got):\n%s", d)
			}
			if !s.equal(tc.ports) || s.equal(tc.other) != cmp.Equal(tc.ports, tc.other) || s.equal(append(tc.ports[:len(tc.ports):len(tc.ports)], udp(1))) {
				t.Fatal("equal")
			}
			p, ok := s.common(tc.other)
			if ok != (tc.clash != nil) || ok && p != *tc.clash {
				t.Fatalf("common = %v %v, want %v", p, ok, tc.clash)
			}
			if len(tc.ports) > 0 {
				if _, ok := s.common(tc.ports[len(tc.ports)-1:]); !ok {
					t.Fatal("no common port with itself")
				}
			}
		})
	}
	// A copy: changing the caller's slice does not change the set.
	in := []model.Port{tcp(1)[0], tcp(2)[0], tcp(3)[0]}
	s := makePortSet(in)
	in[0] = tcp(9)[0]
	if s.at(0) != tcp(1)[0] {
		t.Fatal("portSet aliases its input")
	}
}

// list returns the ports as a new slice.
func (s portSet) list() []model.Port {
	out := make([]model.Port, s.len())
	for i := range out {
		out[i] = s.at(i)
	}
	return out
}
