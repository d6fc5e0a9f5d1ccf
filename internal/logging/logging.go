// Package logging builds the speaker's logger: JSON lines on stderr with
// ISO 8601 millisecond timestamps (failovers are timed from these logs),
// through logr (the interface every Herald package logs to) on zap.
//
// It exists so the speaker need not import controller-runtime for its
// logger.
package logging

import (
	"fmt"
	"os"
	"strconv"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger at level: "info", "debug" (logr V(1)), "error",
// or a number n, which shows logr's V(n) messages.
func New(level string) (logr.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return logr.Logger{}, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(os.Stderr), lvl)
	return zapr.NewLogger(zap.New(core)), nil
}

func parseLevel(s string) (zapcore.Level, error) {
	switch s {
	case "", "info":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 127 {
		return 0, fmt.Errorf("log level %q: want info, debug, error or a verbosity 0..127", s)
	}
	// logr's V(n) is zap's level -n.
	return zapcore.Level(-n), nil
}
