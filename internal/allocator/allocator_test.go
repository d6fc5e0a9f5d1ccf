package allocator

import (
	"math"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/model"
)

type scenario struct {
	name  string
	cfg   *model.Config
	steps []step
}

func runScenarios(t *testing.T, scs []scenario) {
	t.Helper()
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			runSteps(t, newAlloc(t, sc.cfg), sc.steps)
		})
	}
}

func ok(r model.Request, want model.Assignment) step { return step{assign: &r, want: want} }
func fails(r model.Request, err error, msg string) step {
	return step{assign: &r, wantErr: err, wantMsg: msg}
}
func rel(k string) step { return step{release: k, wantReleased: true} }
func cfgStep(c *model.Config, displaced ...Displaced) step {
	return step{config: c, setConfig: true, wantDisplaced: displaced}
}

func svc(k string) model.Request { return model.Request{Service: key(k)} }

func withPool(r model.Request, p string) model.Request           { r.Pool = p; return r }
func withIPs(r model.Request, ips ...string) model.Request       { r.IPs = addrs(ips...); return r }
func withCurrent(r model.Request, ips ...string) model.Request   { r.Current = addrs(ips...); return r }
func withFams(r model.Request, fs ...model.Family) model.Request { r.Families = fs; return r }
func withPolicy(r model.Request, p model.FamilyPolicy) model.Request {
	r.Policy = p
	return r
}
func shared(r model.Request, k string, ports ...model.Port) model.Request {
	r.SharingKey, r.Ports = k, ports
	return r
}
func local(r model.Request, selector string) model.Request {
	r.Local, r.Selector = true, selector
	return r
}
func labels(r model.Request, svcLabels, nsLabels map[string]string) model.Request {
	r.ServiceLabels, r.NamespaceLabels = svcLabels, nsLabels
	return r
}

func TestPoolChoice(t *testing.T) {
	full := func() *model.Config {
		return conf(
			pl(t, "a", "10.0.1.0/24"),
			pl(t, "b", "10.0.2.0/24"),
			manual(pl(t, "man", "10.0.9.0/24")),
			scoped(pl(t, "ns", "10.0.3.0/24"), model.ServiceAllocation{Namespaces: []string{"team"}}),
			scoped(pl(t, "pri10", "10.0.4.0/24"), model.ServiceAllocation{Priority: 10, ServiceSelectors: []model.Selector{labelSel{"tier": "gold"}}}),
			scoped(pl(t, "pri5", "10.0.5.0/24"), model.ServiceAllocation{Priority: 5, NamespaceSelectors: []model.Selector{labelSel{"env": "prod"}}}),
			pl(t, "v6", "2001:db8::/120"),
		)
	}
	gold := map[string]string{"tier": "gold"}
	prod := map[string]string{"env": "prod"}
	runScenarios(t, []scenario{
		{name: "unscoped pools by name", cfg: full(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.1.0")),
			ok(svc("default/y"), asg("a", "10.0.1.1")),
		}},
		{name: "namespace list", cfg: full(), steps: []step{
			ok(svc("team/x"), asg("ns", "10.0.3.0")),
		}},
		{name: "service selector", cfg: full(), steps: []step{
			ok(labels(svc("default/x"), gold, nil), asg("pri10", "10.0.4.0")),
		}},
		{name: "namespace selector with lower priority first", cfg: full(), steps: []step{
			ok(labels(svc("default/x"), gold, prod), asg("pri5", "10.0.5.0")),
		}},
		{name: "priority zero after non-zero priorities", cfg: conf(
			scoped(pl(t, "zero", "10.0.0.0/30"), model.ServiceAllocation{}),
			scoped(pl(t, "nine", "10.0.1.0/30"), model.ServiceAllocation{Priority: 9}),
			pl(t, "plain", "10.0.2.0/30"),
		), steps: []step{
			ok(svc("default/x"), asg("nine", "10.0.1.0")),
		}},
		{name: "scoped pools before unscoped ones", cfg: conf(
			scoped(pl(t, "zz", "10.0.0.0/30"), model.ServiceAllocation{}),
			pl(t, "aa", "10.0.2.0/30"),
		), steps: []step{
			ok(svc("default/x"), asg("zz", "10.0.0.0")),
		}},
		{name: "equal priorities by name", cfg: conf(
			scoped(pl(t, "q", "10.0.0.0/30"), model.ServiceAllocation{Priority: 3}),
			scoped(pl(t, "p", "10.0.1.0/30"), model.ServiceAllocation{Priority: 3}),
		), steps: []step{
			ok(svc("default/x"), asg("p", "10.0.1.0")),
		}},
		{name: "annotation picks a manual pool", cfg: full(), steps: []step{
			ok(withPool(svc("default/x"), "man"), asg("man", "10.0.9.0")),
		}},
		{name: "annotation unknown pool", cfg: full(), steps: []step{
			fails(withPool(svc("default/x"), "gold"), ErrUnknownPool, `pool "gold" does not exist`),
		}},
		{name: "annotation pool of another namespace", cfg: full(), steps: []step{
			fails(withPool(svc("default/x"), "ns"), ErrPoolNotAllowed, `pool "ns" does not serve namespace "default"`),
		}},
		{name: "annotation pool with unmatched service selector", cfg: full(), steps: []step{
			fails(withPool(svc("default/x"), "pri10"), ErrPoolNotAllowed,
				`pool "pri10" does not serve Service default/x: its labels match none of the pool's serviceSelectors`),
		}},
		{name: "annotation pool with matching namespace selector", cfg: full(), steps: []step{
			ok(labels(withPool(svc("default/x"), "pri5"), nil, prod), asg("pri5", "10.0.5.0")),
		}},
		{name: "specific IP in a manual pool", cfg: full(), steps: []step{
			ok(withIPs(svc("default/x"), "10.0.9.7"), asg("man", "10.0.9.7")),
		}},
		{name: "specific IP in the annotated pool", cfg: full(), steps: []step{
			ok(withPool(withIPs(svc("default/x"), "10.0.2.7"), "b"), asg("b", "10.0.2.7")),
		}},
		{name: "specific IP outside the annotated pool", cfg: full(), steps: []step{
			fails(withPool(withIPs(svc("default/x"), "10.0.9.7"), "a"), ErrNotInPool, `10.0.9.7 is in pool "man", not in the requested pool "a"`),
		}},
		{name: "specific IP with an unknown annotated pool", cfg: full(), steps: []step{
			fails(withPool(withIPs(svc("default/x"), "10.0.9.7"), "nope"), ErrUnknownPool, `pool "nope" does not exist`),
		}},
		{name: "specific IP in no pool", cfg: full(), steps: []step{
			fails(withIPs(svc("default/x"), "192.0.2.9"), ErrNotInPool, "192.0.2.9 is not in any pool"),
		}},
		{name: "specific IP invalid", cfg: full(), steps: []step{
			fails(model.Request{Service: key("default/x"), IPs: []netip.Addr{{}}}, ErrNotInPool, "an invalid address was requested"),
		}},
		{name: "specific IP in a pool that does not serve the namespace", cfg: full(), steps: []step{
			fails(withIPs(svc("default/x"), "10.0.3.5"), ErrPoolNotAllowed, `pool "ns" does not serve namespace "default"`),
		}},
		{name: "specific IPs in different pools", cfg: full(), steps: []step{
			fails(withPolicy(withIPs(svc("default/x"), "10.0.1.5", "2001:db8::5"), model.PreferDualStack), ErrFamily,
				`requested IPs are in different pools: 10.0.1.5 in "a", 2001:db8::5 in "v6"`),
		}},
		{name: "no pools", cfg: nil, steps: []step{
			fails(svc("default/x"), ErrNoPool, "no pool serves default/x: no pools are configured"),
		}},
		{name: "no autoAssign pool", cfg: conf(manual(pl(t, "m", "10.0.0.0/30"))), steps: []step{
			fails(svc("default/x"), ErrNoPool, "no pool serves default/x: no pool has autoAssign enabled"),
		}},
		{name: "every pool scoped away", cfg: conf(
			scoped(pl(t, "ns", "10.0.0.0/30"), model.ServiceAllocation{Namespaces: []string{"team"}}),
			scoped(pl(t, "sel", "10.0.1.0/30"), model.ServiceAllocation{ServiceSelectors: []model.Selector{labelSel{"a": "b"}}}),
		), steps: []step{
			fails(svc("default/x"), ErrNoPool, `no pool serves default/x: pool "ns" does not serve namespace "default"; `+
				`pool "sel" does not serve Service default/x: its labels match none of the pool's serviceSelectors`),
		}},
		{name: "next pool when the first is exhausted", cfg: conf(pl(t, "a", "10.0.0.0/32"), pl(t, "b", "10.0.1.0/32")), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(svc("default/y"), asg("b", "10.0.1.0")),
			fails(svc("default/z"), ErrPoolExhausted,
				`no pool could serve default/z: no free IPv4 address in pool "a"; no free IPv4 address in pool "b"`),
		}},
		{name: "exhaustion names the pools tried and skipped", cfg: conf(
			pl(t, "a", "10.0.0.0/32"),
			scoped(pl(t, "ns", "10.0.1.0/30"), model.ServiceAllocation{Namespaces: []string{"team"}}),
		), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			fails(svc("default/z"), ErrPoolExhausted,
				`no pool could serve default/z: no free IPv4 address in pool "a"; pool "ns" does not serve namespace "default"`),
		}},
		{name: "single pool exhausted", cfg: conf(pl(t, "a", "10.0.0.0/32")), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			fails(svc("default/z"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
			fails(withPool(svc("default/z"), "a"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
		}},
		{name: "dual-stack rolls back and tries the next pool", cfg: conf(
			pl(t, "ds1", "10.0.0.0/30", "2001:db8::/128"),
			pl(t, "ds2", "10.0.1.0/30", "2001:db8:1::/126"),
		), steps: []step{
			ok(withIPs(svc("default/v6"), "2001:db8::"), asg("ds1", "2001:db8::")),
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("ds2", "10.0.1.0", "2001:db8:1::")),
			// ds1's IPv4 addresses were not consumed.
			ok(svc("default/y"), asg("ds1", "10.0.0.0")),
		}},
	})
}

func TestSharing(t *testing.T) {
	cfg := func() *model.Config {
		return conf(pl(t, "a", "10.0.0.0/30"), pl(t, "b", "10.0.1.0/30"))
	}
	udp := func(p uint16) model.Port { return model.Port{Protocol: model.UDP, Port: p} }
	one := shared(svc("default/one"), "k", tcp(80)...)
	runScenarios(t, []scenario{
		{name: "same key joins", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("other/three"), "k", tcp(8080)...), asg("a", "10.0.0.0")),
			ok(svc("default/plain"), asg("a", "10.0.0.1")),
		}},
		{name: "same key by IP", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(withIPs(shared(svc("default/two"), "k", tcp(443)...), "10.0.0.0"), asg("a", "10.0.0.0")),
		}},
		{name: "different key", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			fails(withIPs(shared(svc("default/two"), "other", tcp(443)...), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 is in use by default/one and cannot be shared: sharing keys differ"),
			ok(shared(svc("default/two"), "other", tcp(443)...), asg("a", "10.0.0.1")),
		}},
		{name: "requester without key", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			fails(withIPs(svc("default/two"), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 is in use by default/one and cannot be shared: this Service has no sharing key"),
		}},
		{name: "holder without key", cfg: cfg(), steps: []step{
			ok(svc("default/one"), asg("a", "10.0.0.0")),
			fails(withIPs(shared(svc("default/two"), "k"), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 is in use by default/one and cannot be shared: default/one has no sharing key"),
			ok(shared(svc("default/two"), "k"), asg("a", "10.0.0.1")),
		}},
		{name: "port clash on the same protocol", cfg: cfg(), steps: []step{
			ok(shared(svc("default/one"), "k", tcp(80, 443)...), asg("a", "10.0.0.0")),
			fails(withIPs(shared(svc("default/two"), "k", tcp(22, 443)...), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 cannot be shared: port TCP/443 is already used on it by default/one"),
			// Without a specific IP it gets a free address instead.
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.1")),
			// And the next one joins the lowest compatible address.
			ok(shared(svc("default/three"), "k", tcp(8443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/four"), "k", tcp(80)...), asg("a", "10.0.0.1")),
		}},
		{name: "same port on another protocol", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/dns"), "k", udp(80)), asg("a", "10.0.0.0")),
		}},
		{name: "SCTP clash message", cfg: cfg(), steps: []step{
			ok(shared(svc("default/one"), "k", model.Port{Protocol: model.SCTP, Port: 9}), asg("a", "10.0.0.0")),
			fails(withIPs(shared(svc("default/two"), "k", model.Port{Protocol: model.SCTP, Port: 9}), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 cannot be shared: port SCTP/9 is already used on it by default/one"),
		}},
		{name: "unsorted and duplicate ports", cfg: cfg(), steps: []step{
			ok(shared(svc("default/one"), "k", model.Port{Protocol: model.UDP, Port: 53}, tcp(443, 80, 80)[0], tcp(80)[0]), asg("a", "10.0.0.0")),
			fails(withIPs(shared(svc("default/two"), "k", tcp(80)...), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 cannot be shared: port TCP/80 is already used on it by default/one"),
			ok(shared(svc("default/two"), "k", tcp(8080, 22)...), asg("a", "10.0.0.0")),
		}},
		{name: "Local and Cluster", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			fails(withIPs(local(shared(svc("default/two"), "k", tcp(443)...), "app=web"), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 is in use by default/one and cannot be shared: externalTrafficPolicy differs"),
		}},
		{name: "Local with different selectors", cfg: cfg(), steps: []step{
			ok(local(one, "app=web"), asg("a", "10.0.0.0")),
			fails(withIPs(local(shared(svc("default/two"), "k", tcp(443)...), "app=db"), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 is in use by default/one and cannot be shared: pod selectors differ"),
			ok(local(shared(svc("default/two"), "k", tcp(443)...), "app=web"), asg("a", "10.0.0.0")),
		}},
		{name: "Cluster ignores selectors", cfg: cfg(), steps: []step{
			ok(func() model.Request { r := one; r.Selector = "app=web"; return r }(), asg("a", "10.0.0.0")),
			ok(func() model.Request {
				r := shared(svc("default/two"), "k", tcp(443)...)
				r.Selector = "app=db"
				return r
			}(), asg("a", "10.0.0.0")),
		}},
		{name: "join only in the chosen pool", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(withPool(shared(svc("default/two"), "k", tcp(443)...), "b"), asg("b", "10.0.1.0")),
			// Both addresses are now under "k"; the lowest compatible in the pool wins.
			ok(withPool(shared(svc("default/three"), "k", tcp(22)...), "b"), asg("b", "10.0.1.0")),
			ok(shared(svc("default/four"), "k", tcp(22)...), asg("a", "10.0.0.0")),
		}},
		{name: "join only in the chosen family", cfg: conf(pl(t, "ds", "10.0.0.0/30", "2001:db8::/126")), steps: []step{
			ok(withFams(one, model.IPv6), asg("ds", "2001:db8::")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("ds", "10.0.0.0")),
			ok(withPolicy(shared(svc("default/three"), "k", tcp(22)...), model.PreferDualStack), asg("ds", "10.0.0.0", "2001:db8::")),
		}},
		{name: "release sharers in any order", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/three"), "k", tcp(22)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/four"), "k", tcp(23)...), asg("a", "10.0.0.0")),
			rel("default/two"),
			rel("default/one"),
			rel("default/four"),
			rel("default/three"),
			ok(svc("default/plain"), asg("a", "10.0.0.0")),
		}},
		{name: "ports change into a clash on a specific IP", cfg: cfg(), steps: []step{
			ok(withIPs(one, "10.0.0.2"), asg("a", "10.0.0.2")),
			ok(withIPs(shared(svc("default/two"), "k", tcp(443)...), "10.0.0.2"), asg("a", "10.0.0.2")),
			fails(withIPs(shared(svc("default/two"), "k", tcp(80)...), "10.0.0.2"), ErrIPInUse,
				"10.0.0.2 cannot be shared: port TCP/80 is already used on it by default/one"),
		}},
		{name: "dual-stack specific IPs, one of which starts to clash", cfg: conf(pl(t, "ds", "10.0.0.0/30", "2001:db8::/126")), steps: []step{
			ok(withIPs(one, "2001:db8::1"), asg("ds", "2001:db8::1")),
			ok(withPolicy(withIPs(shared(svc("default/x"), "k", tcp(443)...), "10.0.0.1", "2001:db8::1"), model.PreferDualStack),
				asg("ds", "10.0.0.1", "2001:db8::1")),
			fails(withPolicy(withIPs(shared(svc("default/x"), "k", tcp(80)...), "10.0.0.1", "2001:db8::1"), model.PreferDualStack), ErrIPInUse,
				"2001:db8::1 cannot be shared: port TCP/80 is already used on it by default/one"),
		}},
		{name: "dual-stack sharer moves only the family that clashes", cfg: conf(pl(t, "ds", "10.0.0.0/30", "2001:db8::/126")), steps: []step{
			ok(one, asg("ds", "10.0.0.0")),
			ok(withPolicy(shared(svc("default/x"), "k", tcp(443)...), model.RequireDualStack), asg("ds", "10.0.0.0", "2001:db8::")),
			ok(withPolicy(shared(svc("default/x"), "k", tcp(80)...), model.RequireDualStack), asg("ds", "10.0.0.1", "2001:db8::")),
		}},
		{name: "UDP clash message", cfg: cfg(), steps: []step{
			ok(shared(svc("default/one"), "k", udp(53)), asg("a", "10.0.0.0")),
			fails(withIPs(shared(svc("default/two"), "k", udp(53)), "10.0.0.0"), ErrIPInUse,
				"10.0.0.0 cannot be shared: port UDP/53 is already used on it by default/one"),
		}},
		{name: "release one sharer", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			rel("default/one"),
			// Still in use by two: a Service without key cannot have it.
			ok(svc("default/plain"), asg("a", "10.0.0.1")),
			rel("default/two"),
			ok(svc("default/plain2"), asg("a", "10.0.0.0")),
		}},
		{name: "sole holder changes key", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/one"), "k2", tcp(80)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k2", tcp(443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/three"), "k", tcp(443)...), asg("a", "10.0.0.1")),
		}},
		{name: "sole holder drops its key", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(svc("default/one"), asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.1")),
			ok(shared(svc("default/one"), "k", tcp(80)...), asg("a", "10.0.0.0")),
		}},
		{name: "ports change into a clash moves the Service", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443, 8443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(80, 443)...), asg("a", "10.0.0.1")),
		}},
		{name: "key change of a co-holder moves it", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "other", tcp(443)...), asg("a", "10.0.0.1")),
		}},
		{name: "co-holder turns Local", cfg: cfg(), steps: []step{
			ok(one, asg("a", "10.0.0.0")),
			ok(shared(svc("default/two"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			ok(local(shared(svc("default/two"), "k", tcp(443)...), "app=x"), asg("a", "10.0.0.1")),
		}},
	})
}

func TestDualStack(t *testing.T) {
	cfg := func() *model.Config {
		return conf(
			pl(t, "ds", "10.0.0.0/30", "2001:db8::/126"),
			manual(pl(t, "v4", "10.1.0.0/30")),
			manual(pl(t, "v6", "2001:db8:1::/126")),
		)
	}
	runScenarios(t, []scenario{
		{name: "single stack without families takes IPv4", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("ds", "10.0.0.0")),
		}},
		{name: "single stack IPv6", cfg: cfg(), steps: []step{
			ok(withFams(svc("default/x"), model.IPv6), asg("ds", "2001:db8::")),
		}},
		{name: "single stack without families in an IPv6 pool", cfg: cfg(), steps: []step{
			ok(withPool(svc("default/x"), "v6"), asg("v6", "2001:db8:1::")),
		}},
		{name: "single stack IPv6 in an IPv4 pool", cfg: cfg(), steps: []step{
			fails(withFams(withPool(svc("default/x"), "v4"), model.IPv6), ErrFamily, `pool "v4" has no IPv6 addresses`),
		}},
		{name: "prefer dual stack without families", cfg: cfg(), steps: []step{
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("ds", "10.0.0.0", "2001:db8::")),
		}},
		{name: "prefer dual stack IPv6 first", cfg: cfg(), steps: []step{
			ok(withFams(withPolicy(svc("default/x"), model.PreferDualStack), model.IPv6, model.IPv4), asg("ds", "2001:db8::", "10.0.0.0")),
			// One family listed (a single-stack cluster): that one only.
			ok(withFams(withPolicy(svc("default/y"), model.PreferDualStack), model.IPv6), asg("ds", "2001:db8::1")),
		}},
		{name: "prefer dual stack with one family listed", cfg: cfg(), steps: []step{
			ok(withFams(withPolicy(svc("default/x"), model.PreferDualStack), model.IPv4), asg("ds", "10.0.0.0")),
			fails(withFams(withPool(withPolicy(svc("default/y"), model.PreferDualStack), "v4"), model.IPv6), ErrFamily, `pool "v4" has no IPv6 addresses`),
			fails(withFams(withPolicy(withIPs(svc("default/z"), "10.0.0.5", "2001:db8::5"), model.PreferDualStack), model.IPv4), ErrFamily,
				"2001:db8::5 requested, but the Service has only IPv4 (spec.ipFamilies)"),
			fails(withFams(withPolicy(withIPs(svc("default/z"), "2001:db8::5"), model.PreferDualStack), model.IPv4), ErrFamily,
				"2001:db8::5 requested, but the Service has only IPv4 (spec.ipFamilies)"),
			ok(withFams(withPolicy(withIPs(svc("default/z"), "10.0.0.3"), model.PreferDualStack), model.IPv4), asg("ds", "10.0.0.3")),
		}},
		{name: "prefer dual stack in single-family pools", cfg: cfg(), steps: []step{
			ok(withPool(withPolicy(svc("default/x"), model.PreferDualStack), "v4"), asg("v4", "10.1.0.0")),
			ok(withFams(withPool(withPolicy(svc("default/y"), model.PreferDualStack), "v6"), model.IPv4, model.IPv6), asg("v6", "2001:db8:1::")),
		}},
		{name: "require dual stack", cfg: cfg(), steps: []step{
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("ds", "10.0.0.0", "2001:db8::")),
			fails(withPool(withPolicy(svc("default/y"), model.RequireDualStack), "v4"), ErrFamily,
				`RequireDualStack but pool "v4" has no IPv6 addresses`),
		}},
		{name: "require dual stack with one family exhausted", cfg: conf(
			pl(t, "ds", "10.0.0.0/30", "2001:db8::/128"),
			pl(t, "v4", "10.1.0.0/30"),
		), steps: []step{
			ok(withFams(svc("default/x"), model.IPv6), asg("ds", "2001:db8::")),
			fails(withPolicy(svc("default/y"), model.RequireDualStack), ErrPoolExhausted,
				`no pool could serve default/y: no free IPv6 address in pool "ds"; RequireDualStack but pool "v4" has no IPv6 addresses`),
		}},
		{name: "require dual stack without any dual pool", cfg: conf(pl(t, "v4", "10.1.0.0/30"), pl(t, "v6", "2001:db8:1::/126")), steps: []step{
			fails(withPolicy(svc("default/y"), model.RequireDualStack), ErrFamily,
				`no pool could serve default/y: RequireDualStack but pool "v4" has no IPv6 addresses; RequireDualStack but pool "v6" has no IPv4 addresses`),
		}},
		{name: "prefer dual stack in an empty pool", cfg: conf(pl(t, "empty")), steps: []step{
			fails(withPolicy(svc("default/y"), model.PreferDualStack), ErrFamily, `pool "empty" has no addresses`),
		}},
		{name: "two specific IPs", cfg: cfg(), steps: []step{
			ok(withFams(withPolicy(withIPs(svc("default/x"), "10.0.0.2", "2001:db8::2"), model.PreferDualStack), model.IPv6, model.IPv4),
				asg("ds", "2001:db8::2", "10.0.0.2")),
			ok(withPolicy(withIPs(svc("default/y"), "2001:db8::3", "10.0.0.3"), model.RequireDualStack),
				asg("ds", "10.0.0.3", "2001:db8::3")),
		}},
		{name: "one specific IP for prefer dual stack", cfg: cfg(), steps: []step{
			ok(withPolicy(withIPs(svc("default/x"), "2001:db8::2"), model.PreferDualStack), asg("ds", "2001:db8::2")),
		}},
		{name: "bad specific IPs", cfg: cfg(), steps: []step{
			fails(withPolicy(withIPs(svc("default/x"), "10.0.0.1", "10.0.0.2"), model.PreferDualStack), ErrFamily,
				"two IPv4 addresses requested (10.0.0.1 and 10.0.0.2), at most one per family is possible"),
			fails(withIPs(svc("default/x"), "10.0.0.1", "2001:db8::1"), ErrFamily, "two IPs requested for a SingleStack Service"),
			fails(withPolicy(withIPs(svc("default/x"), "10.0.0.1"), model.RequireDualStack), ErrFamily,
				"one IP requested for a RequireDualStack Service, which needs one per family"),
			fails(withFams(withIPs(svc("default/x"), "10.0.0.1"), model.IPv6), ErrFamily, "10.0.0.1 requested for a SingleStack IPv6 Service"),
		}},
		{name: "bad families", cfg: cfg(), steps: []step{
			fails(withFams(svc("default/x"), model.IPv4, model.IPv6, model.IPv4), ErrFamily, "3 ipFamilies given, at most 2 are possible"),
			fails(withFams(svc("default/x"), model.IPv6, model.IPv6), ErrFamily, "ipFamilies lists IPv6 twice"),
			fails(withFams(svc("default/x"), 5), ErrFamily, "unknown IP family 5"),
			fails(withPolicy(svc("default/x"), 9), ErrFamily, "unknown ipFamilyPolicy 9"),
		}},
		{name: "prefer dual stack gains a family when the pool does", cfg: conf(pl(t, "p", "10.0.0.0/30")), steps: []step{
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("p", "10.0.0.0")),
			cfgStep(conf(pl(t, "p", "10.0.0.0/30", "2001:db8::/126"))),
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("p", "10.0.0.0", "2001:db8::")),
		}},
		{name: "prefer dual stack keeps one family when the other is exhausted", cfg: conf(pl(t, "p", "10.0.0.0/30", "2001:db8::/128")), steps: []step{
			ok(withFams(svc("default/v6"), model.IPv6), asg("p", "2001:db8::")),
			ok(svc("default/x"), asg("p", "10.0.0.0")),
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("p", "10.0.0.0")),
			rel("default/v6"),
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("p", "10.0.0.0", "2001:db8::")),
		}},
		{name: "prefer dual stack does not add a family from a pool it may not allocate from", cfg: conf(manual(pl(t, "m", "10.0.0.0/30", "2001:db8::/126"))), steps: []step{
			ok(withPool(svc("default/x"), "m"), asg("m", "10.0.0.0")),
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("m", "10.0.0.0")),
			ok(withPool(withPolicy(svc("default/x"), model.PreferDualStack), "m"), asg("m", "10.0.0.0", "2001:db8::")),
		}},
		{name: "require dual stack adds the missing family in the same pool", cfg: cfg(), steps: []step{
			ok(svc("default/other"), asg("ds", "10.0.0.0")),
			ok(svc("default/x"), asg("ds", "10.0.0.1")),
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("ds", "10.0.0.1", "2001:db8::")),
		}},
		{name: "require dual stack moves when the pool lacks a family", cfg: conf(pl(t, "a4", "10.0.0.0/30"), pl(t, "ds", "10.1.0.0/30", "2001:db8::/126")), steps: []step{
			ok(svc("default/x"), asg("a4", "10.0.0.0")),
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("ds", "10.1.0.0", "2001:db8::")),
			ok(svc("default/y"), asg("a4", "10.0.0.0")),
		}},
		{name: "require dual stack moves when the pool's other family is exhausted", cfg: conf(
			pl(t, "a", "10.0.0.0/30", "2001:db8::/128"), pl(t, "b", "10.1.0.0/30", "2001:db8:1::/126"),
		), steps: []step{
			ok(withFams(svc("default/v6"), model.IPv6), asg("a", "2001:db8::")),
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("b", "10.1.0.0", "2001:db8:1::")),
		}},
		{name: "single stack drops the other family", cfg: cfg(), steps: []step{
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("ds", "10.0.0.0", "2001:db8::")),
			ok(withFams(svc("default/x"), model.IPv6), asg("ds", "2001:db8::")),
			ok(svc("default/y"), asg("ds", "10.0.0.0")),
		}},
		{name: "single stack without families keeps IPv6", cfg: cfg(), steps: []step{
			ok(withFams(svc("default/x"), model.IPv6), asg("ds", "2001:db8::")),
			ok(svc("default/x"), asg("ds", "2001:db8::")),
		}},
		{name: "single stack family switch reallocates", cfg: cfg(), steps: []step{
			ok(withFams(svc("default/x"), model.IPv6), asg("ds", "2001:db8::")),
			ok(withFams(svc("default/x"), model.IPv4), asg("ds", "10.0.0.0")),
			ok(withFams(svc("default/y"), model.IPv6), asg("ds", "2001:db8::")),
		}},
		{name: "primary family order follows the request", cfg: cfg(), steps: []step{
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("ds", "10.0.0.0", "2001:db8::")),
			ok(withFams(withPolicy(svc("default/x"), model.RequireDualStack), model.IPv6, model.IPv4), asg("ds", "2001:db8::", "10.0.0.0")),
		}},
	})
}

func TestKeep(t *testing.T) {
	cfg := func() *model.Config {
		return conf(pl(t, "a", "10.0.0.0/29"), pl(t, "b", "10.0.1.0/29"), manual(pl(t, "m", "10.0.9.0/29")))
	}
	runScenarios(t, []scenario{
		{name: "idempotent", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(shared(withIPs(svc("default/y"), "10.0.0.5"), "k", tcp(80)...), asg("a", "10.0.0.5")),
			ok(shared(withIPs(svc("default/y"), "10.0.0.5"), "k", tcp(80)...), asg("a", "10.0.0.5")),
			ok(withPool(svc("default/z"), "b"), asg("b", "10.0.1.0")),
			ok(withPool(svc("default/z"), "b"), asg("b", "10.0.1.0")),
		}},
		{name: "annotation change moves", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(withPool(svc("default/x"), "b"), asg("b", "10.0.1.0")),
			ok(svc("default/y"), asg("a", "10.0.0.0")),
		}},
		{name: "annotation naming the current pool keeps", cfg: cfg(), steps: []step{
			ok(svc("default/w"), asg("a", "10.0.0.0")),
			ok(svc("default/x"), asg("a", "10.0.0.1")),
			rel("default/w"),
			ok(withPool(svc("default/x"), "a"), asg("a", "10.0.0.1")),
		}},
		{name: "annotation removed from a manual pool keeps", cfg: cfg(), steps: []step{
			ok(withPool(svc("default/x"), "m"), asg("m", "10.0.9.0")),
			ok(svc("default/x"), asg("m", "10.0.9.0")),
		}},
		{name: "specific IP change moves", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(withIPs(svc("default/x"), "10.0.0.0"), asg("a", "10.0.0.0")),
			ok(withIPs(svc("default/x"), "10.0.1.3"), asg("b", "10.0.1.3")),
			ok(svc("default/x"), asg("b", "10.0.1.3")),
			ok(svc("default/y"), asg("a", "10.0.0.0")),
		}},
		{name: "serviceAllocation change does not evict", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			cfgStep(conf(scoped(pl(t, "a", "10.0.0.0/29"), model.ServiceAllocation{Namespaces: []string{"team"}}), pl(t, "b", "10.0.1.0/29"))),
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(svc("default/y"), asg("b", "10.0.1.0")),
		}},
		{name: "unknown pool releases", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			fails(withPool(svc("default/x"), "gone"), ErrUnknownPool, `pool "gone" does not exist`),
			ok(svc("default/y"), asg("a", "10.0.0.0")),
		}},
		{name: "invalid request releases", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			fails(withFams(svc("default/x"), model.IPv4, model.IPv4), ErrFamily, "ipFamilies lists IPv4 twice"),
			ok(svc("default/y"), asg("a", "10.0.0.0")),
		}},
		{name: "release", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			rel("default/x"),
			{release: "default/x", wantReleased: false},
			{release: "default/never", wantReleased: false},
		}},
	})
}

func TestCurrent(t *testing.T) {
	cfg := func() *model.Config {
		return conf(
			pl(t, "a", "10.0.0.0/29", "2001:db8::/125"),
			buggy(pl(t, "b", "10.0.1.0/24")),
			manual(pl(t, "m", "10.0.9.0/29")),
			pl(t, "v6", "2001:db8:1::/125"),
		)
	}
	runScenarios(t, []scenario{
		{name: "kept when free", cfg: cfg(), steps: []step{
			ok(withCurrent(svc("default/x"), "10.0.0.5"), asg("a", "10.0.0.5")),
			ok(svc("default/y"), asg("a", "10.0.0.0")),
		}},
		{name: "kept in a manual pool", cfg: cfg(), steps: []step{
			ok(withCurrent(svc("default/x"), "10.0.9.5"), asg("m", "10.0.9.5")),
		}},
		{name: "in no pool", cfg: cfg(), steps: []step{
			ok(withCurrent(svc("default/x"), "192.0.2.1"), asg("a", "10.0.0.0")),
		}},
		{name: "invalid ignored", cfg: cfg(), steps: []step{
			ok(model.Request{Service: key("default/x"), Current: []netip.Addr{{}}}, asg("a", "10.0.0.0")),
		}},
		{name: "buggy in a pool avoiding them", cfg: cfg(), steps: []step{
			ok(withPool(withCurrent(svc("default/x"), "10.0.1.0"), "b"), asg("b", "10.0.1.1")),
		}},
		{name: "conflict: first wins", cfg: cfg(), steps: []step{
			ok(withCurrent(svc("default/x"), "10.0.0.5"), asg("a", "10.0.0.5")),
			ok(withCurrent(svc("default/y"), "10.0.0.5"), asg("a", "10.0.0.0")),
		}},
		{name: "shareable", cfg: cfg(), steps: []step{
			ok(shared(withCurrent(svc("default/x"), "10.0.0.5"), "k", tcp(80)...), asg("a", "10.0.0.5")),
			ok(shared(withCurrent(svc("default/y"), "10.0.0.5"), "k", tcp(443)...), asg("a", "10.0.0.5")),
			ok(shared(withCurrent(svc("default/z"), "10.0.0.5"), "k", tcp(443)...), asg("a", "10.0.0.0")),
		}},
		{name: "other pool requested", cfg: cfg(), steps: []step{
			ok(withPool(withCurrent(svc("default/x"), "10.0.0.5"), "b"), asg("b", "10.0.1.1")),
		}},
		{name: "other IP requested", cfg: cfg(), steps: []step{
			ok(withIPs(withCurrent(svc("default/x"), "10.0.0.5"), "10.0.0.6"), asg("a", "10.0.0.6")),
			ok(withIPs(withCurrent(svc("default/y"), "10.0.0.5"), "10.0.0.5"), asg("a", "10.0.0.5")),
		}},
		{name: "ignored when the allocator has a record", cfg: cfg(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(withCurrent(svc("default/x"), "10.0.0.5"), asg("a", "10.0.0.0")),
		}},
		{name: "dual stack with one family taken", cfg: cfg(), steps: []step{
			ok(withCurrent(svc("default/thief"), "10.0.0.5"), asg("a", "10.0.0.5")),
			ok(withPolicy(withCurrent(svc("default/x"), "2001:db8::5", "10.0.0.5"), model.PreferDualStack), asg("a", "10.0.0.0", "2001:db8::5")),
		}},
		{name: "dual stack in two pools keeps the primary", cfg: cfg(), steps: []step{
			ok(withPolicy(withCurrent(svc("default/x"), "2001:db8:1::5", "10.0.0.5"), model.PreferDualStack), asg("a", "10.0.0.5", "2001:db8::")),
			ok(withFams(withPolicy(withCurrent(svc("default/y"), "2001:db8:1::5", "10.0.0.6"), model.PreferDualStack), model.IPv6), asg("v6", "2001:db8:1::5")),
		}},
		{name: "extra addresses of one family", cfg: cfg(), steps: []step{
			ok(withCurrent(svc("default/x"), "10.0.0.5", "10.0.0.6"), asg("a", "10.0.0.5")),
		}},
		{name: "require dual stack from a single-family current", cfg: cfg(), steps: []step{
			ok(withPolicy(withCurrent(svc("default/x"), "10.0.0.5"), model.RequireDualStack), asg("a", "10.0.0.5", "2001:db8::")),
			ok(withPolicy(withCurrent(svc("default/y"), "2001:db8:1::3"), model.RequireDualStack), asg("a", "10.0.0.0", "2001:db8::1")),
		}},
	})
}

func TestExhaustion(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "fill, release, refill", cfg: conf(pl(t, "a", "10.0.0.0/30")), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.0")),
			ok(svc("default/s1"), asg("a", "10.0.0.1")),
			ok(svc("default/s2"), asg("a", "10.0.0.2")),
			ok(svc("default/s3"), asg("a", "10.0.0.3")),
			fails(svc("default/s4"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
			rel("default/s1"),
			ok(svc("default/s4"), asg("a", "10.0.0.1")),
			fails(svc("default/s5"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
			rel("default/s0"),
			rel("default/s3"),
			ok(svc("default/s5"), asg("a", "10.0.0.0")),
			ok(svc("default/s6"), asg("a", "10.0.0.3")),
		}},
		{name: "IPv6", cfg: conf(pl(t, "a", "2001:db8::fffe-2001:db8::1:0")), steps: []step{
			ok(svc("default/s0"), asg("a", "2001:db8::fffe")),
			ok(svc("default/s1"), asg("a", "2001:db8::ffff")),
			ok(svc("default/s2"), asg("a", "2001:db8::1:0")),
			fails(svc("default/s3"), ErrPoolExhausted, `no free IPv6 address in pool "a"`),
			rel("default/s1"),
			ok(svc("default/s3"), asg("a", "2001:db8::ffff")),
		}},
		{name: "several ranges", cfg: conf(pl(t, "a", "10.0.0.7", "10.0.0.1-10.0.0.2", "10.0.5.0/31")), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.1")),
			ok(svc("default/s1"), asg("a", "10.0.0.2")),
			ok(svc("default/s2"), asg("a", "10.0.0.7")),
			ok(svc("default/s3"), asg("a", "10.0.5.0")),
			ok(svc("default/s4"), asg("a", "10.0.5.1")),
			fails(svc("default/s5"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
			rel("default/s2"),
			ok(svc("default/s5"), asg("a", "10.0.0.7")),
		}},
	})
}

func TestAvoidBuggyIPs(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "/31", cfg: conf(buggy(pl(t, "a", "10.0.0.0/31"))), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.1")),
			fails(svc("default/s1"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
		}},
		{name: "/31 at the top of a /24", cfg: conf(buggy(pl(t, "a", "10.0.0.254/31"))), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.254")),
			fails(svc("default/s1"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
		}},
		{name: "/32 buggy", cfg: conf(buggy(pl(t, "a", "10.0.0.255/32"))), steps: []step{
			fails(svc("default/s0"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
			fails(withIPs(svc("default/s0"), "10.0.0.255"), ErrNotInPool, `10.0.0.255 ends in .0 or .255, which pool "a" avoids`),
		}},
		{name: "/32 fine", cfg: conf(buggy(pl(t, "a", "10.0.0.7/32"))), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.7")),
		}},
		{name: "across /24 boundaries", cfg: conf(buggy(pl(t, "a", "10.0.0.253-10.0.2.1"))), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.253")),
			ok(svc("default/s1"), asg("a", "10.0.0.254")),
			ok(svc("default/s2"), asg("a", "10.0.1.1")),
			rel("default/s1"),
			ok(svc("default/s3"), asg("a", "10.0.0.254")),
			ok(svc("default/s4"), asg("a", "10.0.1.2")),
		}},
		{name: "not avoiding hands out .0 and .255", cfg: conf(pl(t, "a", "10.0.0.255-10.0.1.0")), steps: []step{
			ok(svc("default/s0"), asg("a", "10.0.0.255")),
			ok(svc("default/s1"), asg("a", "10.0.1.0")),
		}},
	})

	// Fill a pool spanning several /24s completely.
	a := newAlloc(t, conf(buggy(pl(t, "a", "10.0.0.200-10.0.3.10"))))
	n := 0
	for {
		r := svc("default/s" + itoa(n))
		got, err := a.Assign(r)
		if err != nil {
			break
		}
		if model.IsBuggy(got.IPs[0]) {
			t.Fatalf("handed out %s", got.IPs[0])
		}
		n++
	}
	if st := a.Stats("a"); uint64(n) != st.IPv4.Capacity || st.IPv4.InUse != st.IPv4.Capacity {
		t.Fatalf("assigned %d, stats %+v", n, st)
	}
	if got := a.pools["a"].spaces[v4].runs.len(); got != 1 {
		t.Fatalf("full pool has %d runs, want 1", got)
	}
	checkInvariants(t, a)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestSetConfig(t *testing.T) {
	base := func() *model.Config {
		return conf(pl(t, "a", "10.0.0.0/29", "2001:db8::/125"), pl(t, "b", "10.0.1.0/29"))
	}
	runScenarios(t, []scenario{
		{name: "same config keeps everything", cfg: base(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(withPolicy(svc("default/y"), model.RequireDualStack), asg("a", "10.0.0.1", "2001:db8::")),
			cfgStep(base()),
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(withPolicy(svc("default/y"), model.RequireDualStack), asg("a", "10.0.0.1", "2001:db8::")),
			ok(svc("default/z"), asg("a", "10.0.0.2")),
		}},
		{name: "address leaves every pool", cfg: base(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(svc("default/y"), asg("a", "10.0.0.1")),
			cfgStep(conf(pl(t, "a", "10.0.0.1-10.0.0.7", "2001:db8::/125"), pl(t, "b", "10.0.1.0/29")),
				Displaced{Service: key("default/x"), IPs: addrs("10.0.0.0"), Pool: "a", Reason: "10.0.0.0 is no longer in any pool"}),
			ok(svc("default/y"), asg("a", "10.0.0.1")),
			ok(svc("default/x"), asg("a", "10.0.0.2")),
		}},
		{name: "address moves to another pool", cfg: base(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(svc("default/y"), asg("a", "10.0.0.1")),
			cfgStep(conf(pl(t, "a", "10.0.0.1-10.0.0.7"), pl(t, "b", "10.0.1.0/29", "10.0.0.0")),
				Displaced{Service: key("default/x"), Kept: addrs("10.0.0.0"), Pool: "a", Reason: `its addresses are in pool "b" now`}),
			ok(svc("default/x"), asg("b", "10.0.0.0")),
			ok(svc("default/z"), asg("a", "10.0.0.2")),
			ok(withPool(svc("default/w"), "b"), asg("b", "10.0.1.0")),
		}},
		{name: "pool renamed", cfg: base(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			cfgStep(conf(pl(t, "renamed", "10.0.0.0/29")),
				Displaced{Service: key("default/x"), Kept: addrs("10.0.0.0"), Pool: "a", Reason: `its addresses are in pool "renamed" now`}),
			ok(svc("default/x"), asg("renamed", "10.0.0.0")),
		}},
		{name: "a Service that asked for the old pool moves", cfg: conf(pl(t, "a", "10.0.0.0/29"), pl(t, "b", "10.0.1.0/29")), steps: []step{
			ok(withPool(svc("default/x"), "a"), asg("a", "10.0.0.0")),
			cfgStep(conf(pl(t, "a", "10.0.0.1-10.0.0.7"), pl(t, "b", "10.0.1.0/29", "10.0.0.0")),
				Displaced{Service: key("default/x"), Kept: addrs("10.0.0.0"), Pool: "a", Reason: `its addresses are in pool "b" now`}),
			ok(withPool(svc("default/x"), "a"), asg("a", "10.0.0.1")),
		}},
		{name: "pool starts avoiding buggy addresses", cfg: base(), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.0")),
			ok(svc("default/y"), asg("a", "10.0.0.1")),
			cfgStep(conf(buggy(pl(t, "a", "10.0.0.0/29")), pl(t, "b", "10.0.1.0/29")),
				Displaced{Service: key("default/x"), IPs: addrs("10.0.0.0"), Pool: "a",
					Reason: `10.0.0.0 ends in .0 or .255 and pool "a" avoids buggy IPs`}),
			ok(svc("default/x"), asg("a", "10.0.0.2")),
		}},
		{name: "dual stack split across pools", cfg: base(), steps: []step{
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("a", "10.0.0.0", "2001:db8::")),
			cfgStep(conf(pl(t, "a", "2001:db8::/125"), pl(t, "b", "10.0.1.0/29", "10.0.0.0/29")),
				Displaced{Service: key("default/x"), IPs: addrs("10.0.0.0", "2001:db8::"), Pool: "a",
					Reason: `10.0.0.0 is now in pool "b" and 2001:db8:: in pool "a": an assignment comes from one pool`}),
		}},
		{name: "everything removed, sorted", cfg: base(), steps: []step{
			ok(svc("ns2/x"), asg("a", "10.0.0.0")),
			ok(svc("ns1/z"), asg("a", "10.0.0.1")),
			ok(withFams(svc("ns1/y"), model.IPv6), asg("a", "2001:db8::")),
			cfgStep(nil,
				Displaced{Service: key("ns1/y"), IPs: addrs("2001:db8::"), Pool: "a", Reason: "2001:db8:: is no longer in any pool"},
				Displaced{Service: key("ns1/z"), IPs: addrs("10.0.0.1"), Pool: "a", Reason: "10.0.0.1 is no longer in any pool"},
				Displaced{Service: key("ns2/x"), IPs: addrs("10.0.0.0"), Pool: "a", Reason: "10.0.0.0 is no longer in any pool"},
			),
			fails(svc("ns2/x"), ErrNoPool, "no pool serves ns2/x: no pools are configured"),
		}},
		{name: "shared address removed", cfg: base(), steps: []step{
			ok(shared(svc("default/x"), "k", tcp(80)...), asg("a", "10.0.0.0")),
			ok(shared(svc("default/y"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			cfgStep(conf(pl(t, "b", "10.0.1.0/29")),
				Displaced{Service: key("default/x"), IPs: addrs("10.0.0.0"), Pool: "a", Reason: "10.0.0.0 is no longer in any pool"},
				Displaced{Service: key("default/y"), IPs: addrs("10.0.0.0"), Pool: "a", Reason: "10.0.0.0 is no longer in any pool"},
			),
		}},
		{name: "co-holder survives", cfg: base(), steps: []step{
			ok(shared(withPolicy(svc("default/x"), model.RequireDualStack), "k", tcp(80)...), asg("a", "10.0.0.0", "2001:db8::")),
			ok(shared(svc("default/y"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			cfgStep(conf(pl(t, "a", "10.0.0.0/29")),
				Displaced{Service: key("default/x"), IPs: addrs("2001:db8::"), Kept: addrs("10.0.0.0"), Pool: "a", Reason: "2001:db8:: is no longer in any pool"},
			),
			ok(shared(svc("default/y"), "k", tcp(443)...), asg("a", "10.0.0.0")),
			ok(svc("default/z"), asg("a", "10.0.0.1")),
		}},
		{name: "dual stack keeps the family still in the pool", cfg: base(), steps: []step{
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("a", "10.0.0.0", "2001:db8::")),
			cfgStep(conf(pl(t, "a", "10.0.0.0/29")),
				Displaced{Service: key("default/x"), IPs: addrs("2001:db8::"), Kept: addrs("10.0.0.0"), Pool: "a", Reason: "2001:db8:: is no longer in any pool"},
			),
			// Another Service does not get x's IPv4 address meanwhile.
			ok(svc("default/y"), asg("a", "10.0.0.1")),
			ok(withPolicy(svc("default/x"), model.PreferDualStack), asg("a", "10.0.0.0")),
		}},
		{name: "dual stack keeps one family, gets the other anew", cfg: base(), steps: []step{
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("a", "10.0.0.0", "2001:db8::")),
			cfgStep(conf(pl(t, "a", "10.0.0.0/29", "2001:db8::100/125")),
				Displaced{Service: key("default/x"), IPs: addrs("2001:db8::"), Kept: addrs("10.0.0.0"), Pool: "a", Reason: "2001:db8:: is no longer in any pool"},
			),
			ok(svc("default/y"), asg("a", "10.0.0.1")),
			ok(withPolicy(svc("default/x"), model.RequireDualStack), asg("a", "10.0.0.0", "2001:db8::100")),
		}},
		{name: "IPv6 primary keeps its IPv6 address", cfg: base(), steps: []step{
			ok(withFams(withPolicy(svc("default/x"), model.PreferDualStack), model.IPv6, model.IPv4), asg("a", "2001:db8::", "10.0.0.0")),
			cfgStep(conf(pl(t, "a", "2001:db8::/125")),
				Displaced{Service: key("default/x"), IPs: addrs("10.0.0.0"), Kept: addrs("2001:db8::"), Pool: "a", Reason: "10.0.0.0 is no longer in any pool"},
			),
			ok(withFams(withPolicy(svc("default/x"), model.PreferDualStack), model.IPv6, model.IPv4), asg("a", "2001:db8::")),
		}},
		{name: "overlapping pools: first in PoolOrder wins", cfg: conf(pl(t, "a", "10.0.0.0/29"), pl(t, "b", "10.0.0.4-10.0.0.11")), steps: []step{
			ok(withIPs(svc("default/x"), "10.0.0.5"), asg("a", "10.0.0.5")),
			ok(withPool(svc("default/y"), "b"), asg("b", "10.0.0.8")),
		}},
		{name: "malformed ranges ignored", cfg: conf(&model.Pool{Name: "a", AutoAssign: true, Ranges: []model.Range{
			{First: netip.MustParseAddr("10.0.0.5"), Last: netip.MustParseAddr("10.0.0.1")},
			{First: netip.MustParseAddr("10.0.0.1"), Last: netip.MustParseAddr("2001:db8::1")},
			{},
			{First: netip.MustParseAddr("10.0.0.9"), Last: netip.MustParseAddr("10.0.0.9")},
		}}), steps: []step{
			ok(svc("default/x"), asg("a", "10.0.0.9")),
			fails(svc("default/y"), ErrPoolExhausted, `no free IPv4 address in pool "a"`),
		}},
	})

	t.Run("pool order missing a pool", func(t *testing.T) {
		c := conf(pl(t, "a", "10.0.0.0/29"))
		c.PoolOrder = append(c.PoolOrder, "ghost", "a")
		a := newAlloc(t, c)
		if got := len(a.pools); got != 1 {
			t.Fatalf("%d pools", got)
		}
	})
}

func TestStats(t *testing.T) {
	a := newAlloc(t, conf(
		buggy(pl(t, "a", "10.0.0.0/24", "10.0.2.0/31", "2001:db8::/64")),
		pl(t, "b", "2001:db8:1::/65", "2001:db8:2::/126"),
		pl(t, "top", "8000::/1"),
	))
	steps := []step{
		ok(shared(withPolicy(svc("default/x"), model.RequireDualStack), "k", tcp(80)...), asg("a", "10.0.0.1", "2001:db8::")),
		ok(shared(svc("default/y"), "k", tcp(443)...), asg("a", "10.0.0.1")),
		ok(svc("default/z"), asg("a", "10.0.0.2")),
	}
	runSteps(t, a, steps)
	for _, tc := range []struct {
		pool string
		want PoolStats
	}{
		{"a", PoolStats{
			IPv4:     FamilyStats{Capacity: 254 + 1, InUse: 2, Services: 3},
			IPv6:     FamilyStats{Capacity: math.MaxUint64, InUse: 1, Services: 1},
			Services: 3,
		}},
		{"b", PoolStats{IPv6: FamilyStats{Capacity: 1<<63 + 4}}},
		{"top", PoolStats{IPv6: FamilyStats{Capacity: math.MaxUint64}}},
		{"nope", PoolStats{}},
	} {
		t.Run(tc.pool, func(t *testing.T) {
			if d := cmp.Diff(tc.want, a.Stats(tc.pool)); d != "" {
				t.Errorf("Stats (-want +got):\n%s", d)
			}
		})
	}
	if got := a.ServiceCount(); got != 3 {
		t.Errorf("ServiceCount = %d", got)
	}
	a.Release(key("default/x"))
	if d := cmp.Diff(PoolStats{
		IPv4:     FamilyStats{Capacity: 255, InUse: 2, Services: 2},
		IPv6:     FamilyStats{Capacity: math.MaxUint64},
		Services: 2,
	}, a.Stats("a")); d != "" {
		t.Errorf("Stats after release (-want +got):\n%s", d)
	}
	if got := a.ServiceCount(); got != 2 {
		t.Errorf("ServiceCount = %d", got)
	}
}

func TestProtocolName(t *testing.T) {
	for p, want := range map[model.Protocol]string{model.TCP: "TCP", model.UDP: "UDP", model.SCTP: "SCTP", 0: "protocol(0)"} {
		if got := protocolName(p); got != want {
			t.Errorf("protocolName(%d) = %q, want %q", p, got, want)
		}
	}
}
