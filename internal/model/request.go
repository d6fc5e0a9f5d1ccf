package model

import "net/netip"

// FamilyPolicy is a Service's spec.ipFamilyPolicy.
type FamilyPolicy uint8

// The family policies. The zero value is SingleStack.
const (
	SingleStack FamilyPolicy = iota
	PreferDualStack
	RequireDualStack
)

// Protocol of a Service port.
type Protocol uint8

// The protocols.
const (
	TCP Protocol = iota + 1
	UDP
	SCTP
)

// Port is one port of a Service.
type Port struct {
	Protocol Protocol
	Port     uint16
}

// Request is what a Service asks of the allocator, read from its spec and
// annotations by the controller.
type Request struct {
	Service ServiceKey
	// ServiceLabels and NamespaceLabels feed pools' serviceAllocation
	// selectors.
	ServiceLabels   map[string]string
	NamespaceLabels map[string]string

	// Pool is the pool named by annotation, "" when none.
	Pool string
	// IPs are the specific addresses asked for (annotation or
	// spec.loadBalancerIP), at most one per family.
	IPs []netip.Addr

	// Policy and Families are spec.ipFamilyPolicy and spec.ipFamilies;
	// Families[0] is the primary family. Empty Families means "whatever the
	// chosen pool offers, IPv4 first".
	Policy   FamilyPolicy
	Families []Family

	// SharingKey is the allow-shared-ip annotation, "" when the Service
	// does not share.
	SharingKey string
	// Ports are the Service ports, for sharing clashes.
	Ports []Port
	// Local is true for externalTrafficPolicy: Local; Selector is then the
	// canonical form of the Service's pod selector (Services sharing an IP
	// under Local must select the same pods).
	Local    bool
	Selector string

	// Current are the IPs the Service already shows in its status. After a
	// controller restart the allocator has no record of the Service and
	// keeps these when they are still valid, so no assignment moves.
	Current []netip.Addr
}

// Assignment is what the allocator gave a Service.
type Assignment struct {
	Pool string
	// IPs in the order of the request's families (primary first).
	IPs []netip.Addr
}
