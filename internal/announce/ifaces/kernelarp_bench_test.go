package ifaces

import "testing"

// BenchmarkReadARPState reads the namespace it runs in: run it in one
// with many addresses (as a node with kube-proxy's IPVS mode has one per
// Service), e.g. `ip netns exec NS ./ifaces.test -test.bench ReadARPState`.
func BenchmarkReadARPState(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		st, err := ReadARPState([]string{"lo"})
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Addrs) == 0 {
			b.Fatal("no address")
		}
	}
}

// BenchmarkReadARPStateStrict is the usual case: arp_ignore 1 (strict
// ARP), one interface; run it in a namespace with many addresses on lo and
// an address on veth0.
func BenchmarkReadARPStateStrict(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadARPState([]string{"veth0"}); err != nil {
			b.Fatal(err)
		}
	}
}
