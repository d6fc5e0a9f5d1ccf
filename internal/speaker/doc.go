// Package speaker decides what a node announces, and drives the announcers.
//
// The deciding half is pure: a Snapshot (configuration, Services with their
// assigned IPs, Nodes, endpoints, live members, their claims and the
// interface sets each has no link on) goes in, and the desired layer-2
// announcements come out (L2Desired). Every speaker computes the same
// owners from the same snapshot; each acts only on the IPs it owns.
//
// A node whose interfaces for a pool lose their link (OwnNoLink) steps
// aside: it publishes the sets through the membership, everyone leaves it
// out of that pool's candidates, and it stops answering those addresses
// but keeps claiming them (idle) until its link is back and it has
// resynchronized with the members it lost, so that the newer claims of
// whoever took them over win.
//
// The acting half (Speaker) watches the API server, keeps the snapshot,
// reconciles the ARP and NDP responders to the desired set, gossips this
// node's claims, and writes ServiceL2Status objects and events. When it
// has been quiet for a second it also plans, for each other live member,
// what this node takes over if that member goes (plan.go), so a takeover
// starts before the pass that confirms it.
//
// KernelARPCheck watches for what Herald cannot fix by answering right:
// a node whose kernel answers ARP by itself for addresses other nodes own
// (KernelARPConflicts, pure: the Service addresses on an interface of the
// node, as kube-proxy's IPVS mode puts them, and arp_ignore 0). It reports
// it on the Node, in the log and a metric, and changes nothing. Other
// hosts claiming an address this node answers for, as the responders see
// them, become AddressConflict events on its Services (ReportConflict).
//
// BGP has the same two halves. ComputeBGP is pure: configuration,
// Services, endpoints, Nodes and this node's name and addresses go in,
// this node's sessions and the routes it sends on each come out; there is
// no election, every eligible node announces. BGPLoop hands that to the
// BGP adapter (package announce/bgp), and BGPStatusWriter writes
// BGPSessionStatus and ServiceBGPStatus objects, session events on the
// BGPPeers and the BGP metrics.
//
// The speaker talks to the API server only through package kube (plain
// client-go informers and REST clients for the few kinds it reads):
// controller-runtime and the typed clientset would load every API group
// into every node's memory; Kubernetes' own kinds travel as protobuf.
// Each loop is a Pass driven by a runner: one key in a delaying queue, so
// passes never overlap and any number of events make one pass. Events
// that cannot change a pass make none (passFilter): Services Herald does
// not announce, updates that leave a Service's announced view as it was,
// EndpointSlices of Services not announced, slice updates that change
// no endpoint's node or readiness, and the controller's status writes to
// the configuration objects. Interface changes reach the loops only
// when they change what ifaces.List reports (ifaces.Watch), not for every
// Service address a proxy puts on the node.
package speaker
