package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortIsFreeAndOutsideTheEphemeralRange(t *testing.T) {
	for range 20 {
		p := Port(t)
		if p < low || p > high {
			t.Fatalf("port %d outside %d-%d", p, low, high)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("TCP port %d not free: %v", p, err)
		}
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("UDP port %d not free: %v", p, err)
		}
		// Taken now: free says so.
		if free(p) {
			t.Errorf("port %d reported free while listened on", p)
		}
		l.Close()
		u.Close()
	}
}
