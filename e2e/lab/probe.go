package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Probes: what a user sees from a client, with the real tools. Each runs
// through a Driver, so they work on any lab.

// ErrNoAnswer says nothing answered a probe.
var ErrNoAnswer = errors.New("no answer")

// ARPOwners broadcasts ARP requests for ip from host's eth0 for one second
// (arping) and returns the distinct MACs that answered, sorted. More than
// one MAC means more than one node claims the IP.
func ARPOwners(ctx context.Context, d Driver, host string, ip netip.Addr) ([]string, error) {
	return ARPOwnersOn(ctx, d, host, "eth0", ip)
}

// ARPOwnersOn is ARPOwners from host's interface ifname.
func ARPOwnersOn(ctx context.Context, d Driver, host, ifname string, ip netip.Addr) ([]string, error) {
	out, err := d.Exec(ctx, host, "arping", "-b", "-c", "2", "-w", "1", "-I", ifname, ip.String())
	macs := ParseArping(string(out))
	if len(macs) == 0 {
		if err != nil {
			return nil, fmt.Errorf("arping %s: %w (%v)", ip, ErrNoAnswer, err)
		}
		return nil, fmt.Errorf("arping %s: %w", ip, ErrNoAnswer)
	}
	return macs, nil
}

var arpingReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)

// ParseArping returns the distinct MACs in iputils arping's reply lines
// ("Unicast reply from 172.31.255.200 [02:48:4C:00:01:02]  0.612ms"),
// lower-cased and sorted.
func ParseArping(out string) []string {
	seen := map[string]bool{}
	var macs []string
	for _, m := range arpingReply.FindAllStringSubmatch(out, -1) {
		mac := strings.ToLower(m[1])
		if !seen[mac] {
			seen[mac] = true
			macs = append(macs, mac)
		}
	}
	sort.Strings(macs)
	return macs
}

// NDPOwner resolves ip from host's eth0 the way a client does (the
// neighbour entry is flushed, a ping makes the kernel solicit it) and returns
// the MAC the kernel learnt. ndisc6 is not used: it ignores advertisements
// whose source differs from the target, which is how a responder for a VIP
// answers.
func NDPOwner(ctx context.Context, d Driver, host string, ip netip.Addr) (string, error) {
	return neighOwner(ctx, d, host, ip)
}

// NeighOwner is NDPOwner for either family (ARP for IPv4).
func neighOwner(ctx context.Context, d Driver, host string, ip netip.Addr) (string, error) {
	fam := "-4"
	if ip.Is6() {
		fam = "-6"
	}
	_, _ = d.Exec(ctx, host, "ip", fam, "neigh", "flush", "to", ip.String(), "dev", "eth0")
	_, _ = d.Exec(ctx, host, "ping", fam, "-c", "1", "-W", "1", "-I", "eth0", ip.String())
	out, err := d.Exec(ctx, host, "ip", "-j", fam, "neigh", "show", "to", ip.String(), "dev", "eth0")
	if err != nil {
		return "", err
	}
	mac, err := ParseNeigh(out)
	if err != nil {
		return "", fmt.Errorf("neighbour %s: %w", ip, err)
	}
	return mac, nil
}

// ParseNeigh returns the link-layer address of the first usable entry of
// `ip -j neigh show` output.
func ParseNeigh(out []byte) (string, error) {
	var entries []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		return "", fmt.Errorf("parse ip neigh: %w", err)
	}
	for _, e := range entries {
		if e.LLAddr != "" && !contains(e.State, "FAILED") && !contains(e.State, "INCOMPLETE") {
			return strings.ToLower(e.LLAddr), nil
		}
	}
	return "", ErrNoAnswer
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseLinkMAC reads the MAC from `ip -j link show dev X`.
func parseLinkMAC(out []byte) (net.HardwareAddr, error) {
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) == 0 {
		return nil, fmt.Errorf("parse ip link: %v", err)
	}
	return net.ParseMAC(links[0].Address)
}

// URL is the http URL of ip:port.
func URL(ip netip.Addr, port int) string {
	if port == 80 {
		if ip.Is6() {
			return "http://[" + ip.String() + "]/"
		}
		return "http://" + ip.String() + "/"
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(port)) + "/"
}

// Curl fetches http://ip:port/ from host with curl (2 s timeout) and
// returns the body trimmed: the lab's backends answer with the name of the
// node that served the request.
func Curl(ctx context.Context, d Driver, host string, ip netip.Addr, port int) (string, error) {
	out, err := d.Exec(ctx, host, "curl", "-s", "-g", "--max-time", "2", "-f", URL(ip, port))
	if err != nil {
		return "", fmt.Errorf("curl %s from %s: %w", URL(ip, port), host, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// BGPPath is one path of a prefix in FRR's BGP table.
type BGPPath struct {
	Valid     bool
	Best      bool
	Multipath bool
	PeerID    string
	// NextHops are the path's global next-hop addresses.
	NextHops []string
}

// ParseBGPTable parses `show bgp ipv4|ipv6 unicast json` into paths per
// prefix.
func ParseBGPTable(out []byte) (map[string][]BGPPath, error) {
	var doc struct {
		Routes map[string][]struct {
			Valid     bool   `json:"valid"`
			Best      bool   `json:"bestpath"`
			Multipath bool   `json:"multipath"`
			PeerID    string `json:"peerId"`
			NextHops  []struct {
				IP    string `json:"ip"`
				Scope string `json:"scope"`
			} `json:"nexthops"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parse vtysh json: %w", err)
	}
	res := map[string][]BGPPath{}
	for prefix, paths := range doc.Routes {
		for _, p := range paths {
			bp := BGPPath{Valid: p.Valid, Best: p.Best, Multipath: p.Multipath, PeerID: p.PeerID}
			for _, nh := range p.NextHops {
				if nh.Scope == "link-local" {
					continue
				}
				bp.NextHops = append(bp.NextHops, nh.IP)
			}
			res[prefix] = append(res[prefix], bp)
		}
	}
	return res, nil
}

// BGPNextHops returns the sorted next hops of the valid paths FRR holds for
// prefix ("172.31.250.10/32").
func BGPNextHops(ctx context.Context, d Driver, prefix netip.Prefix) ([]string, error) {
	fam := "ipv4"
	if prefix.Addr().Is6() {
		fam = "ipv6"
	}
	out, err := d.Vtysh(ctx, "show bgp "+fam+" unicast json")
	if err != nil {
		return nil, err
	}
	table, err := ParseBGPTable(out)
	if err != nil {
		return nil, err
	}
	var hops []string
	for _, p := range table[prefix.String()] {
		if p.Valid {
			hops = append(hops, p.NextHops...)
		}
	}
	sort.Strings(hops)
	return hops, nil
}

// ParseRouteNextHops returns the gateways of the first route in
// `ip -j route show` output: one for a plain route, several for ECMP.
func ParseRouteNextHops(out []byte) ([]string, error) {
	var routes []struct {
		Gateway  string `json:"gateway"`
		NextHops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("parse ip route: %w", err)
	}
	if len(routes) == 0 {
		return nil, nil
	}
	var gws []string
	if routes[0].Gateway != "" {
		gws = append(gws, routes[0].Gateway)
	}
	for _, nh := range routes[0].NextHops {
		gws = append(gws, nh.Gateway)
	}
	sort.Strings(gws)
	return gws, nil
}

// KernelNextHops returns the next hops of the router's kernel route for
// prefix.
func KernelNextHops(ctx context.Context, d Driver, prefix netip.Prefix) ([]string, error) {
	fam := "-4"
	if prefix.Addr().Is6() {
		fam = "-6"
	}
	out, err := d.Exec(ctx, HostRouter, "ip", "-j", fam, "route", "show", prefix.String())
	if err != nil {
		return nil, err
	}
	return ParseRouteNextHops(out)
}
