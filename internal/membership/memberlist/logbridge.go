package memberlist

import (
	"errors"
	"log"
	"strings"

	"github.com/go-logr/logr"
)

// newStdLogger returns the *log.Logger memberlist wants, writing into l.
func newStdLogger(l logr.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

// logWriter turns memberlist's "[LEVEL] memberlist: text" lines into logr
// calls: ERR/ERROR as errors, WARN at V(0), INFO at V(1), DEBUG, TRACE
// and anything unrecognised at V(2). log.Logger makes one Write per line.
type logWriter struct {
	log logr.Logger
}

func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseLine(string(p))
	switch level {
	case "ERR", "ERROR":
		w.log.Error(errors.New(msg), "memberlist reported an error")
	case "WARN":
		w.log.Info(msg)
	case "INFO":
		w.log.V(1).Info(msg)
	default:
		w.log.V(2).Info(msg)
	}
	return len(p), nil
}

// parseLine splits "[LEVEL] memberlist: text\n" into LEVEL and text. A line
// without a level gives "".
func parseLine(s string) (level, msg string) {
	s = strings.TrimRight(s, "\r\n")
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			level, s = s[1:end], strings.TrimLeft(s[end+1:], " ")
		}
	}
	s = strings.TrimPrefix(s, "memberlist: ")
	return level, s
}
