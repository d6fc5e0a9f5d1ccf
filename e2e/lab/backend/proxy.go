package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Loopback holds the node's Service IPs.
type Loopback interface {
	// List returns the addresses on the interface.
	List(ctx context.Context) ([]netip.Addr, error)
	Add(ctx context.Context, a netip.Addr) error
	Del(ctx context.Context, a netip.Addr) error
}

// IPLoopback is Loopback on `lo` through the ip command.
type IPLoopback struct{}

var _ Loopback = IPLoopback{}

// List implements Loopback.
func (IPLoopback) List(ctx context.Context) ([]netip.Addr, error) {
	out, err := exec.CommandContext(ctx, "ip", "-j", "addr", "show", "dev", "lo").Output()
	if err != nil {
		return nil, fmt.Errorf("ip addr show dev lo: %w", err)
	}
	var links []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("parse ip addr: %w", err)
	}
	var addrs []netip.Addr
	for _, l := range links {
		for _, ai := range l.AddrInfo {
			if a, err := netip.ParseAddr(ai.Local); err == nil {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, nil
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Add implements Loopback.
func (IPLoopback) Add(ctx context.Context, a netip.Addr) error {
	if a.Is4() {
		return ipCmd(ctx, "addr", "add", netip.PrefixFrom(a, 32).String(), "dev", "lo")
	}
	return ipCmd(ctx, "-6", "addr", "add", netip.PrefixFrom(a, 128).String(), "dev", "lo", "nodad")
}

// Del implements Loopback.
func (IPLoopback) Del(ctx context.Context, a netip.Addr) error {
	bits := 32
	if a.Is6() {
		bits = 128
	}
	return ipCmd(ctx, "addr", "del", netip.PrefixFrom(a, bits).String(), "dev", "lo")
}

// isServiceIP tells the addresses the proxy manages on lo from the
// loopback's own.
func isServiceIP(a netip.Addr) bool {
	return !a.IsLoopback() && !a.IsLinkLocalUnicast()
}

// Proxy serves one node's backends.
type Proxy struct {
	node    string
	cs      kubernetes.Interface
	lo      Loopback
	log     logr.Logger
	servers map[netip.AddrPort]*http.Server
	// Synced is closed once the caches are filled (for health checks).
	Synced chan struct{}
}

// NewProxy returns a proxy for node; Run starts it.
func NewProxy(node string, cs kubernetes.Interface, lo Loopback, log logr.Logger) *Proxy {
	return &Proxy{node: node, cs: cs, lo: lo, log: log, servers: map[netip.AddrPort]*http.Server{}, Synced: make(chan struct{})}
}

// Run watches Services and EndpointSlices and reconciles on each change and
// every resync, until ctx ends; then it removes every backend and IP.
func (p *Proxy) Run(ctx context.Context, resync time.Duration) error {
	f := informers.NewSharedInformerFactory(p.cs, 0)
	svcs := f.Core().V1().Services()
	slices := f.Discovery().V1().EndpointSlices()
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() }, UpdateFunc: func(any, any) { poke() }, DeleteFunc: func(any) { poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{svcs.Informer(), slices.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	close(p.Synced)
	p.log.Info("proxy running", "node", p.node)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Reconcile(cctx, nil); err != nil {
			p.log.Error(err, "clean up backends")
		}
	}()
	t := time.NewTicker(resync)
	defer t.Stop()
	// applied is the last desired set reconciled without error: a change
	// to a Service that is not served here (thousands of no-backend
	// fillers in a benchmark) then costs no `ip` command.
	var applied map[netip.AddrPort]string
	force := true
	for {
		allSvcs, _ := svcs.Lister().List(labels.Everything())
		allSlices, _ := slices.Lister().List(labels.Everything())
		want := Desired(p.node, allSvcs, allSlices)
		if force || !maps.Equal(want, applied) {
			applied = nil
			if err := p.Reconcile(ctx, want); err != nil {
				p.log.Error(err, "reconcile backends (will retry)")
				go func() {
					select {
					case <-time.After(time.Second):
						poke()
					case <-ctx.Done():
					}
				}()
			} else {
				applied = want
			}
		}
		force = false
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-t.C:
			force = true
		}
	}
}

// Reconcile makes lo and the listeners match want: listeners go before
// their IP, IPs come before their listeners.
func (p *Proxy) Reconcile(ctx context.Context, want map[netip.AddrPort]string) error {
	var errs []error
	for ap, srv := range p.servers {
		if _, ok := want[ap]; !ok {
			_ = srv.Close()
			delete(p.servers, ap)
			p.log.Info("backend stopped", "ip", ap.Addr().String(), "port", ap.Port())
		}
	}
	wantIPs := map[netip.Addr]bool{}
	for _, a := range IPs(want) {
		wantIPs[a] = true
	}
	have, err := p.lo.List(ctx)
	if err != nil {
		return err
	}
	haveIPs := map[netip.Addr]bool{}
	for _, a := range have {
		haveIPs[a] = true
		if isServiceIP(a) && !wantIPs[a] {
			if err := p.lo.Del(ctx, a); err != nil {
				errs = append(errs, err)
			} else {
				p.log.Info("IP removed from lo", "ip", a.String())
			}
		}
	}
	for a := range wantIPs {
		if !haveIPs[a] {
			if err := p.lo.Add(ctx, a); err != nil {
				errs = append(errs, err)
			} else {
				p.log.Info("IP added to lo", "ip", a.String())
			}
		}
	}
	for ap, svc := range want {
		if p.servers[ap] != nil {
			continue
		}
		ln, err := net.Listen("tcp", ap.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("listen %s: %w", ap, err))
			continue
		}
		srv := &http.Server{Handler: p.handler(), ReadHeaderTimeout: 2 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error(err, "backend failed", "ip", ap.Addr().String(), "port", ap.Port())
			}
		}()
		p.servers[ap] = srv
		p.log.Info("backend serving", "service", svc, "ip", ap.Addr().String(), "port", ap.Port())
	}
	return errors.Join(errs...)
}

// handler answers every request with the node's name.
func (p *Proxy) handler() http.Handler {
	body := []byte(p.node + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Herald-Lab-Node", p.node)
		_, _ = w.Write(body)
	})
}
