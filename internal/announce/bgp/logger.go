package bgp

import (
	"fmt"
	"sort"

	"github.com/go-logr/logr"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// logBridge sends GoBGP's log to logr: errors as errors, warnings at
// V(0), information at V(1), debug at V(2). GoBGP's "Key" field (the
// neighbor address) is logged as "peer". Fatal and Panic are logged as
// errors and do not end the process: GoBGP reports those failures to the
// caller as well.
//
// It also tells onStateChange why a session changed state: GoBGP reports
// the reason only in its "state changed" debug message.
type logBridge struct {
	log           logr.Logger
	onStateChange func(addr, reason string)
}

var _ gobgplog.Logger = (*logBridge)(nil)

func (b *logBridge) kv(fields gobgplog.Fields) []any {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		name := k
		switch k {
		case "Key":
			name = "peer"
		case "Topic":
			name = "topic"
		}
		kv = append(kv, name, fmt.Sprint(fields[k]))
	}
	return kv
}

func (b *logBridge) Panic(msg string, fields gobgplog.Fields) {
	b.log.Error(nil, "gobgp: "+msg, b.kv(fields)...)
}

func (b *logBridge) Fatal(msg string, fields gobgplog.Fields) {
	b.log.Error(nil, "gobgp: "+msg, b.kv(fields)...)
}

func (b *logBridge) Error(msg string, fields gobgplog.Fields) {
	b.log.Error(nil, "gobgp: "+msg, b.kv(fields)...)
}

func (b *logBridge) Warn(msg string, fields gobgplog.Fields) {
	b.log.Info("gobgp: "+msg, b.kv(fields)...)
}

func (b *logBridge) Info(msg string, fields gobgplog.Fields) {
	b.log.V(1).Info("gobgp: "+msg, b.kv(fields)...)
}

func (b *logBridge) Debug(msg string, fields gobgplog.Fields) {
	if msg == "state changed" && b.onStateChange != nil {
		addr, _ := fields["Key"].(string)
		if r := fields["reason"]; r != nil {
			b.onStateChange(addr, fmt.Sprint(r))
		}
	}
	if b.log.V(2).Enabled() {
		b.log.V(2).Info("gobgp: "+msg, b.kv(fields)...)
	}
}

func (b *logBridge) SetLevel(gobgplog.LogLevel) {}

// GetLevel tells GoBGP to build debug messages only when they are logged
// (it asks before the costly ones).
func (b *logBridge) GetLevel() gobgplog.LogLevel {
	if b.log.V(2).Enabled() {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
