package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/model"
)

func TestParseAddresses(t *testing.T) {
	tests := []struct {
		in      string
		want    model.Range
		wantErr string
	}{
		{in: "10.0.0.0/24", want: rng("10.0.0.0", "10.0.0.255")},
		{in: "10.0.0.7/24", want: rng("10.0.0.0", "10.0.0.255")}, // host bits masked
		{in: "10.0.0.7/32", want: rng("10.0.0.7", "10.0.0.7")},
		{in: "0.0.0.0/0", want: rng("0.0.0.0", "255.255.255.255")},
		{in: " 10.0.0.0/30 ", want: rng("10.0.0.0", "10.0.0.3")},
		{in: "fd00::/120", want: rng("fd00::", "fd00::ff")},
		{in: "fd00::1:2/112", want: rng("fd00::1:0", "fd00::1:ffff")},
		{in: "::/81", want: rng("::", "::7fff:ffff:ffff")},
		{in: "::1:0:0:0/96", want: rng("::1:0:0:0", "::1:0:ffff:ffff")}, // just above the mapped block
		{in: "10.0.0.1-10.0.0.9", want: rng("10.0.0.1", "10.0.0.9")},
		{in: "10.0.0.1 - 10.0.0.9", want: rng("10.0.0.1", "10.0.0.9")},
		{in: "10.0.0.5-10.0.0.5", want: rng("10.0.0.5", "10.0.0.5")},
		{in: "fd00::1-fd00::ff", want: rng("fd00::1", "fd00::ff")},

		{in: "10.0.0.300/24", wantErr: `"10.0.0.300/24" is neither a CIDR nor a first-last range`},
		{in: "10.0.0.0/33", wantErr: `"10.0.0.0/33" is neither a CIDR nor a first-last range`},
		{in: "", wantErr: `"" is neither a CIDR nor a first-last range`},
		{in: "pool", wantErr: `"pool" is neither a CIDR nor a first-last range`},
		{in: "10.0.0.1", wantErr: `"10.0.0.1" is neither a CIDR nor a first-last range (for one address write 10.0.0.1/32)`},
		{in: "fd00::1", wantErr: `"fd00::1" is neither a CIDR nor a first-last range (for one address write fd00::1/128)`},
		{in: "10.0.0.1-", wantErr: `"10.0.0.1-" is neither a CIDR nor a first-last range`},
		{in: "10.0.0.1-10.0.0.2-10.0.0.3", wantErr: `"10.0.0.1-10.0.0.2-10.0.0.3" is neither a CIDR nor a first-last range`},
		{in: "10.0.0.0/24-10.0.1.0", wantErr: `"10.0.0.0/24-10.0.1.0" is neither a CIDR nor a first-last range`},
		{in: "010.0.0.0/8", wantErr: `"010.0.0.0/8" is neither a CIDR nor a first-last range`},
		{in: "10.0.0.9-10.0.0.1", wantErr: `range "10.0.0.9-10.0.0.1": 10.0.0.9 is after 10.0.0.1`},
		{in: "10.0.0.1-fd00::1", wantErr: `range "10.0.0.1-fd00::1" mixes IPv4 and IPv6`},
		{in: "::ffff:10.0.0.0/120", wantErr: `CIDR "::ffff:10.0.0.0/120": ::ffff:10.0.0.0 is an IPv4-mapped IPv6 address; write 10.0.0.0`},
		{in: "::ffff:10.0.0.1-::ffff:10.0.0.9", wantErr: `range "::ffff:10.0.0.1-::ffff:10.0.0.9": ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address; write 10.0.0.1`},
		{in: "fe80::1%eth0-fe80::9%eth0", wantErr: `range "fe80::1%eth0-fe80::9%eth0": fe80::1%eth0 has a zone; zones are not allowed`},
		{in: "::/0", wantErr: `"::/0" holds the IPv4-mapped addresses ::ffff:0:0/96, which are not IPv6 addresses to announce; leave them out`},
		{in: "::/80", wantErr: `"::/80" holds the IPv4-mapped addresses ::ffff:0:0/96, which are not IPv6 addresses to announce; leave them out`},
		{in: "::fffe:0:0-::1:0:0:0", wantErr: `"::fffe:0:0-::1:0:0:0" holds the IPv4-mapped addresses ::ffff:0:0/96, which are not IPv6 addresses to announce; leave them out`},
		{in: "fe80::%eth0/64", wantErr: `"fe80::%eth0/64" is neither a CIDR nor a first-last range`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseAddresses(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseAddresses(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAddresses(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpModel); diff != "" {
				t.Errorf("parseAddresses(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRangePrefixes(t *testing.T) {
	tests := []struct {
		r    model.Range
		want []netip.Prefix
	}{
		{rng("10.0.0.0", "10.0.0.255"), []netip.Prefix{prefix("10.0.0.0/24")}},
		{rng("10.0.0.7", "10.0.0.7"), []netip.Prefix{prefix("10.0.0.7/32")}},
		{rng("10.0.0.10", "10.0.0.20"), []netip.Prefix{
			prefix("10.0.0.10/31"), prefix("10.0.0.12/30"), prefix("10.0.0.16/30"), prefix("10.0.0.20/32")}},
		{rng("0.0.0.0", "255.255.255.255"), []netip.Prefix{prefix("0.0.0.0/0")}},
		{rng("255.255.255.254", "255.255.255.255"), []netip.Prefix{prefix("255.255.255.254/31")}},
		{rng("10.0.0.255", "10.0.1.0"), []netip.Prefix{prefix("10.0.0.255/32"), prefix("10.0.1.0/32")}},
		{rng("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), []netip.Prefix{prefix("::/0")}},
		{rng("fd00::1", "fd00::3"), []netip.Prefix{prefix("fd00::1/128"), prefix("fd00::2/127")}},
	}
	for _, tt := range tests {
		t.Run(tt.r.First.String()+"-"+tt.r.Last.String(), func(t *testing.T) {
			if diff := cmp.Diff(tt.want, rangePrefixes(tt.r), cmpModel); diff != "" {
				t.Errorf("rangePrefixes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []model.Range
		want []model.Range
	}{
		{"empty", nil, nil},
		{"sorted, v4 before v6", []model.Range{rng("fd00::1", "fd00::2"), rng("10.0.1.0", "10.0.1.9"), rng("10.0.0.0", "10.0.0.9")},
			[]model.Range{rng("10.0.0.0", "10.0.0.9"), rng("10.0.1.0", "10.0.1.9"), rng("fd00::1", "fd00::2")}},
		{"adjacent", []model.Range{rng("10.0.0.128", "10.0.0.255"), rng("10.0.0.0", "10.0.0.127")},
			[]model.Range{rng("10.0.0.0", "10.0.0.255")}},
		{"overlapping", []model.Range{rng("10.0.0.5", "10.0.0.20"), rng("10.0.0.0", "10.0.0.10")},
			[]model.Range{rng("10.0.0.0", "10.0.0.20")}},
		{"contained", []model.Range{rng("10.0.0.0", "10.0.0.255"), rng("10.0.0.5", "10.0.0.6")},
			[]model.Range{rng("10.0.0.0", "10.0.0.255")}},
		{"gap of one", []model.Range{rng("10.0.0.0", "10.0.0.4"), rng("10.0.0.6", "10.0.0.9")},
			[]model.Range{rng("10.0.0.0", "10.0.0.4"), rng("10.0.0.6", "10.0.0.9")}},
		{"top of v4 and bottom of v6 stay apart", []model.Range{rng("::", "::1"), rng("255.255.255.255", "255.255.255.255")},
			[]model.Range{rng("255.255.255.255", "255.255.255.255"), rng("::", "::1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, mergeRanges(tt.in), cmpModel); diff != "" {
				t.Errorf("mergeRanges (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/24", "10.0.0.7/24", "fd00::/120", "10.0.0.1-10.0.0.9", "10.0.0.1 - 10.0.0.9",
		"fd00::1-fd00::ff", "::ffff:10.0.0.0/120", "fe80::1%eth0-fe80::2%eth0", "10.0.0.9-10.0.0.1",
		"10.0.0.1-fd00::1", "0.0.0.0/0", "::/0", "", "-", "/", "1.2.3.4", "1.2.3.4/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseAddresses(s)
		if err != nil {
			return
		}
		if !r.First.IsValid() || !r.Last.IsValid() {
			t.Fatalf("parseAddresses(%q) = %v: invalid address", s, r)
		}
		if r.First.Is4() != r.Last.Is4() || r.First.Is4In6() || r.Last.Is4In6() || r.First.Zone() != "" || r.Last.Zone() != "" ||
			(r.First.Is6() && r.First.Less(netip.MustParseAddr("::ffff:0:0")) && netip.MustParseAddr("::ffff:0:0").Less(r.Last)) {
			t.Fatalf("parseAddresses(%q) = %v: mixed family, mapped or zoned", s, r)
		}
		if r.Last.Less(r.First) {
			t.Fatalf("parseAddresses(%q) = %v: First > Last", s, r)
		}
		// The exact cover must start at First, end at Last and be contiguous.
		ps := rangePrefixes(r)
		if ps[0].Addr() != r.First || lastAddr(ps[len(ps)-1]) != r.Last {
			t.Fatalf("rangePrefixes(%v) = %v: does not span the range", r, ps)
		}
		for i := 1; i < len(ps); i++ {
			if lastAddr(ps[i-1]).Next() != ps[i].Addr() {
				t.Fatalf("rangePrefixes(%v) = %v: not contiguous", r, ps)
			}
		}
		if len(ps) > 2*r.First.BitLen() {
			t.Fatalf("rangePrefixes(%v) gave %d prefixes", r, len(ps))
		}
	})
}
