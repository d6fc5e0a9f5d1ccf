// Package freeport picks ports for tests to listen on.
//
// A port the kernel chose for a listener that was then closed can be
// taken before the test binds it again: the kernel hands the same range
// out as source ports of outgoing connections (ip_local_port_range,
// 32768-60999 by default), and a busy test binary makes plenty of them.
// Port picks, at random, a port below that range that is free for both
// TCP and UDP at the time, which only a listener asking for exactly that
// port could take.
package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// The range Port picks from: registered ports below Linux's default
// ephemeral range.
const (
	low  = 20000
	high = 32767
)

// Port returns a port on 127.0.0.1 that was free for TCP and UDP a moment
// ago and is not in the kernel's ephemeral range.
func Port(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := low + rand.IntN(high-low+1)
		if free(p) {
			return p
		}
	}
	t.Fatalf("no free port in %d-%d after 100 tries", low, high)
	return 0
}

func free(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}
