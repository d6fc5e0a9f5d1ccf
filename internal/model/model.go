package model

import (
	"net/netip"
	"strconv"
	"time"
)

// ServiceKey names a Service.
type ServiceKey struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// Family is an IP address family.
type Family uint8

// The address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "unknown"
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Selector matches a label set. Config builds them from Kubernetes label
// selectors; a nil Selector is never stored.
type Selector interface {
	Matches(labels map[string]string) bool
	String() string
}

// AnySelects reports whether any of sels matches labels. An empty list
// selects everything.
func AnySelects(sels []Selector, labels map[string]string) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s.Matches(labels) {
			return true
		}
	}
	return false
}

// Range is an inclusive range of addresses of one family, First <= Last.
type Range struct {
	First, Last netip.Addr
}

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Family returns the family of the range.
func (r Range) Family() Family { return FamilyOf(r.First) }

// Pool is a validated address pool.
type Pool struct {
	Name string
	// Labels are the pool object's labels, for advertisement selectors.
	Labels map[string]string
	// Ranges are sorted, non-overlapping and non-adjacent within the pool;
	// IPv4 ranges come before IPv6 ones. A CIDR becomes one range.
	Ranges []Range
	// CIDRs are the fewest prefixes that exactly cover Ranges (each
	// merged range split into aligned blocks), sorted; used by BGP
	// aggregation checks. A pool given as one CIDR has that CIDR here.
	CIDRs         []netip.Prefix
	AutoAssign    bool
	AvoidBuggyIPs bool
	// Allocation is nil when the pool serves every Service.
	Allocation *ServiceAllocation
	// Source says where the pool was defined (no status to write for a
	// ConfigMap-defined pool).
	Source Source
}

// HasFamily reports whether the pool has addresses of family f.
func (p *Pool) HasFamily(f Family) bool {
	for _, r := range p.Ranges {
		if r.Family() == f {
			return true
		}
	}
	return false
}

// Contains reports whether a is an address of the pool that may be
// assigned (in a range, and not a buggy address when the pool avoids them).
func (p *Pool) Contains(a netip.Addr) bool {
	if p.AvoidBuggyIPs && IsBuggy(a) {
		return false
	}
	for _, r := range p.Ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// IsBuggy reports whether a is an IPv4 address ending in .0 or .255.
func IsBuggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[3] == 0 || b[3] == 255
}

// ServiceAllocation scopes a pool to some Services and orders it.
type ServiceAllocation struct {
	// Priority: lower is tried first; 0 means after every pool with a
	// priority.
	Priority int
	// Namespaces and NamespaceSelectors: when either is non-empty, the
	// Service's namespace must be listed or match one of the selectors.
	Namespaces         []string
	NamespaceSelectors []Selector
	// ServiceSelectors: when non-empty, one must match the Service labels.
	ServiceSelectors []Selector
}

// Allows reports whether a Service in namespace ns (with namespace labels
// nsLabels) and with labels svcLabels may use a pool with this scope.
func (a *ServiceAllocation) Allows(ns string, nsLabels, svcLabels map[string]string) bool {
	if a == nil {
		return true
	}
	if len(a.Namespaces) > 0 || len(a.NamespaceSelectors) > 0 {
		ok := false
		for _, n := range a.Namespaces {
			if n == ns {
				ok = true
				break
			}
		}
		if !ok {
			for _, s := range a.NamespaceSelectors {
				if s.Matches(nsLabels) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return false
		}
	}
	return AnySelects(a.ServiceSelectors, svcLabels)
}

// L2Advertisement is a validated layer-2 advertisement.
type L2Advertisement struct {
	Name string
	// Pools are the names of the pools it covers, sorted.
	Pools         []string
	NodeSelectors []Selector
	// Interfaces empty means every suitable interface.
	Interfaces []string
	Source     Source
}

// Community is a BGP community value, standard (Large false: Value holds
// ASN<<16|value in its low 32 bits) or large (Global:Local1:Local2).
type Community struct {
	Large  bool
	Value  uint32
	Global uint32
	Local1 uint32
	Local2 uint32
}

// String returns "65000:100" for a standard community and "large:1:2:3"
// for a large one.
func (c Community) String() string {
	if c.Large {
		return "large:" + strconv.FormatUint(uint64(c.Global), 10) + ":" +
			strconv.FormatUint(uint64(c.Local1), 10) + ":" + strconv.FormatUint(uint64(c.Local2), 10)
	}
	return strconv.FormatUint(uint64(c.Value>>16), 10) + ":" + strconv.FormatUint(uint64(c.Value&0xffff), 10)
}

// BGPAdvertisement is a validated BGP advertisement.
type BGPAdvertisement struct {
	Name string
	// Pools are the names of the pools it covers, sorted.
	Pools               []string
	AggregationLength   int
	AggregationLengthV6 int
	LocalPref           uint32
	// Communities are resolved (aliases replaced), sorted, deduplicated.
	Communities []Community
	// Peers empty means every peer.
	Peers         []string
	NodeSelectors []Selector
	Source        Source
}

// SecretRef names a Secret holding a BGP password.
type SecretRef struct {
	Namespace, Name string
}

// Peer is a validated BGP peer.
type Peer struct {
	Name string
	// ASN is the router's AS number: peerASN, or myASN for dynamicASN
	// internal, or 0 for dynamicASN external (any AS but MyASN).
	MyASN, ASN uint32
	// Dynamic is set when the AS number comes from the router's OPEN.
	Dynamic         DynamicASN
	Addr            netip.Addr
	Port            uint16
	SrcAddr         netip.Addr // invalid when unset
	RouterID        netip.Addr // invalid when unset
	HoldTime        time.Duration
	KeepaliveTime   time.Duration
	ConnectTime     time.Duration
	Password        string
	PasswordSecret  *SecretRef
	EBGPMultiHop    bool
	NodeSelectors   []Selector
	GracefulRestart bool
	// BFD, when set, watches the session with BFD.
	BFD    *BFDProfile
	Source Source
}

// BFDProfile is the resolved BFD settings of a peer (defaults applied).
type BFDProfile struct {
	Name             string
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	DetectMultiplier uint8
	Passive          bool
	// MinimumTTL is the lowest TTL accepted on multi-hop sessions.
	MinimumTTL uint8
}

// DynamicASN is how a peer's AS number is found: "" means it is
// configured (peerASN).
type DynamicASN string

// Dynamic AS modes (BGPPeer spec.dynamicASN).
const (
	DynamicInternal DynamicASN = "internal"
	DynamicExternal DynamicASN = "external"
)

// IBGP reports whether the session is internal BGP.
func (p *Peer) IBGP() bool { return p.ASN == p.MyASN }

// Source tells where a configuration object came from.
type Source uint8

// Configuration sources.
const (
	SourceCRD Source = iota
	SourceConfigMap
)

// Config is the whole validated configuration.
type Config struct {
	// Pools by name.
	Pools map[string]*Pool
	// PoolOrder is every pool name sorted by name, for deterministic walks.
	PoolOrder []string
	L2Advs    []*L2Advertisement
	BGPAdvs   []*BGPAdvertisement
	Peers     []*Peer
}

// PoolFor returns the pool holding a (as Pool.Contains), or nil.
func (c *Config) PoolFor(a netip.Addr) *Pool {
	if c == nil {
		return nil
	}
	for _, name := range c.PoolOrder {
		if p := c.Pools[name]; p.Contains(a) {
			return p
		}
	}
	return nil
}
