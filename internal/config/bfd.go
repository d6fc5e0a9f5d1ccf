package config

import (
	"time"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// bfdSet holds every BFDProfile name; the value is nil for an invalid
// profile (already reported), so a peer naming it is not reported again.
type bfdSet map[string]*model.BFDProfile

// bfdProfiles validates the BFDProfile objects and applies defaults.
func (b *builder) bfdProfiles(entries []entry[v1beta1.BFDProfile]) bfdSet {
	set := bfdSet{}
	for _, e := range entries {
		spec := &e.obj.Spec
		ok := true
		bad := func(field, format string, args ...any) {
			b.add(e.object, field, format, args...)
			ok = false
		}
		// within checks an optional value against its range and returns
		// it, or def when unset.
		within := func(field string, v *uint32, lo, hi, def uint32) uint32 {
			switch {
			case v == nil:
				return def
			case *v < lo || *v > hi:
				bad(field, "%d is not between %d and %d", *v, lo, hi)
			}
			return *v
		}
		ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
		def := uint32(DefaultBFDInterval / time.Millisecond)
		p := &model.BFDProfile{
			Name:             e.obj.Name,
			ReceiveInterval:  ms(within("spec.receiveInterval", spec.ReceiveInterval, 10, 60000, def)),
			TransmitInterval: ms(within("spec.transmitInterval", spec.TransmitInterval, 10, 60000, def)),
			DetectMultiplier: uint8(within("spec.detectMultiplier", spec.DetectMultiplier, 2, 255, DefaultBFDDetectMultiplier)),
			MinimumTTL:       uint8(within("spec.minimumTtl", spec.MinimumTTL, 1, 254, DefaultBFDMinimumTTL)),
			Passive:          spec.PassiveMode != nil && *spec.PassiveMode,
		}
		// Echo mode is accepted, so MetalLB configurations carry over, and
		// not used: the control packets alone detect a failure.
		within("spec.echoInterval", spec.EchoInterval, 10, 60000, 0)
		set[p.Name] = nil
		if ok {
			set[p.Name] = p
		}
	}
	return set
}
