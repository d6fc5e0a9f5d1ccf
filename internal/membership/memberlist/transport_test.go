package memberlist

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestTransportPacketsAtTheirSize(t *testing.T) {
	tr, err := newTransport("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	addr := net.JoinHostPort("127.0.0.1", itoa(tr.port()))
	for _, size := range []int{1, 100, 1400} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := tr.WriteTo(msg, addr); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-tr.PacketCh():
			if !bytes.Equal(p.Buf, msg) {
				t.Fatalf("packet of %d bytes read as %d bytes", size, len(p.Buf))
			}
			// The point of this transport: no 64 KiB buffer per packet.
			if cap(p.Buf) > 2*size+64 {
				t.Errorf("a %d-byte packet holds a %d-byte buffer", size, cap(p.Buf))
			}
			if p.From.String() != addr || p.Timestamp.IsZero() {
				t.Errorf("packet from %v at %v, want from %s with a time", p.From, p.Timestamp, addr)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the %d-byte packet never arrived", size)
		}
	}
}

func TestTransportStreamsAndShutdown(t *testing.T) {
	tr, err := newTransport("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.DialTimeout(net.JoinHostPort("127.0.0.1", itoa(tr.port())), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-tr.StreamCh():
		s.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was never handed over")
	}
	// A packet nobody reads must not keep Shutdown waiting.
	if _, err := tr.WriteTo([]byte("unread"), net.JoinHostPort("127.0.0.1", itoa(tr.port()))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the reader block on it
	done := make(chan error, 1)
	go func() { done <- tr.Shutdown() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown blocked on an unread packet")
	}
	if err := tr.Shutdown(); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
}

func TestTransportAdvertiseAddr(t *testing.T) {
	tr, err := newTransport("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	ip, port, err := tr.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal(net.ParseIP("127.0.0.1")) || port != tr.port() {
		t.Errorf("advertise (bound) = %v:%d, %v; want 127.0.0.1:%d", ip, port, err, tr.port())
	}
	ip, port, err = tr.FinalAdvertiseAddr("10.1.2.3", 7000)
	if err != nil || !ip.Equal(net.ParseIP("10.1.2.3")) || len(ip) != net.IPv4len || port != 7000 {
		t.Errorf("advertise (given) = %v:%d, %v; want 10.1.2.3:7000 in 4 bytes", ip, port, err)
	}
	if _, _, err := tr.FinalAdvertiseAddr("not-an-ip", 7000); err == nil {
		t.Error("a bad advertise address was accepted")
	}
	if _, err := newTransport("localhost", 0); err == nil {
		t.Error("a host name was accepted as the bind address")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
