package allocator

import (
	"testing"
	"unsafe"
)

func TestServiceLayout(t *testing.T) {
	var s service
	if size := unsafe.Sizeof(s); size > 128 {
		t.Errorf("service is %d bytes, want at most 128 (one size class)", size)
	}
	if end := unsafe.Offsetof(s.flags) + unsafe.Sizeof(s.flags); end > 64 {
		t.Errorf("sharing fields end at byte %d, want them in the first 64", end)
	}
}
