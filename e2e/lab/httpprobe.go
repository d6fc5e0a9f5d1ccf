package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The HTTP probe is a curl loop without curl's costs: a request every
// `every` (20 ms in the benchmark), each on a new TCP connection with its
// own deadline, fired whether or not the earlier ones have answered, so
// that a request stuck on a dead node's MAC does not delay the next one.
// It runs inside a client's namespace (`lab probe`) and writes one line per
// request:
//
//	<start unix ns> <end unix ns> ok <body>
//	<start unix ns> <end unix ns> err <reason>

// RunHTTPProbe probes url every `every`, each request bounded by timeout,
// until ctx ends, writing one line per request to w.
func RunHTTPProbe(ctx context.Context, w io.Writer, url string, every, timeout time.Duration) error {
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		DisableKeepAlives: true,
	}
	hc := &http.Client{Transport: tr, Timeout: timeout}
	var mu sync.Mutex
	bw := bufio.NewWriter(w)
	emit := func(start, end time.Time, ok bool, text string) {
		text = strings.Join(strings.Fields(text), " ")
		status := "err"
		if ok {
			status = "ok"
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(bw, "%d %d %s %s\n", start.UnixNano(), end.UnixNano(), status, text)
		_ = bw.Flush()
	}
	one := func() {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			emit(start, time.Now(), false, err.Error())
			return
		}
		resp, err := hc.Do(req)
		if err != nil {
			emit(start, time.Now(), false, err.Error())
			return
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		end := time.Now()
		switch {
		case err != nil:
			emit(start, end, false, err.Error())
		case resp.StatusCode != http.StatusOK:
			emit(start, end, false, resp.Status)
		default:
			emit(start, end, true, string(body))
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(every)
	defer t.Stop()
	wg.Go(one)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			wg.Go(one)
		}
	}
}

// ProbeResult is one request of an HTTP probe.
type ProbeResult struct {
	Start, End time.Time
	OK         bool
	// Body is the answer (the node's name) or, when !OK, the reason.
	Body string
}

// ParseProbeLine parses one line written by RunHTTPProbe.
func ParseProbeLine(line string) (ProbeResult, bool) {
	f := strings.SplitN(strings.TrimSpace(line), " ", 4)
	if len(f) < 3 {
		return ProbeResult{}, false
	}
	s, err1 := strconv.ParseInt(f[0], 10, 64)
	e, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || (f[2] != "ok" && f[2] != "err") {
		return ProbeResult{}, false
	}
	r := ProbeResult{Start: time.Unix(0, s), End: time.Unix(0, e), OK: f[2] == "ok"}
	if len(f) == 4 {
		r.Body = f[3]
	}
	return r, true
}

// HTTPProbe is RunHTTPProbe running on a lab host (`lab probe`), its
// results collected as they come.
type HTTPProbe struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	results []ProbeResult
	changed chan struct{} // closed and replaced on every new result
}

// StartHTTPProbe starts `lab probe` on host against url.
func (l *Lab) StartHTTPProbe(ctx context.Context, host, url string, every, timeout time.Duration) (*HTTPProbe, error) {
	pp, err := startPiped(ctx, l, host, false, l.Bin("lab"), "probe", "--url", url, "--every", every.String(), "--timeout", timeout.String())
	if err != nil {
		return nil, err
	}
	cmd, stdout, cancel := pp.cmd, pp.stdout, pp.cancel
	p := &HTTPProbe{cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if r, ok := ParseProbeLine(sc.Text()); ok {
				p.mu.Lock()
				p.results = append(p.results, r)
				close(p.changed)
				p.changed = make(chan struct{})
				p.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
	return p, nil
}

// Results returns the results so far, in the order they completed.
func (p *HTTPProbe) Results() []ProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProbeResult(nil), p.results...)
}

// WaitFor waits until a result satisfies f and returns the first one (in
// completion order), or false when d passes or ctx ends.
func (p *HTTPProbe) WaitFor(ctx context.Context, d time.Duration, f func(ProbeResult) bool) (ProbeResult, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		rs, ch := p.results[seen:], p.changed
		seen = len(p.results)
		p.mu.Unlock()
		for _, r := range rs {
			if f(r) {
				return r, true
			}
		}
		select {
		case <-ch:
		case <-p.done:
			return ProbeResult{}, false
		case <-deadline.C:
			return ProbeResult{}, false
		case <-ctx.Done():
			return ProbeResult{}, false
		}
	}
}

// Stop ends the probe and returns all its results.
func (p *HTTPProbe) Stop() []ProbeResult {
	p.cancel()
	<-p.done
	return p.Results()
}
