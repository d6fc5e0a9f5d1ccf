// Package ifaces discovers the node's network interfaces for the layer-2
// responders and decides which of them to answer on.
//
// List and Watch are the parts that touch the system. List: one link dump
// (net.Interfaces), one address dump (rtnetlink RTM_GETADDR on a socket of
// its own, read as it comes and parsed without allocating per address: a
// node with kube-proxy's IPVS mode has one per Service) and one stat of /sys/class/net/NAME/master per
// interface, all in the caller's network namespace (and /sys as mounted
// for it). Watch: rtnetlink notifications of links and addresses; it
// keeps every interface's usable addresses (one dump, then the
// notifications) and signals an address change only when it changes what
// List reports, so listeners list again only then. ReadARPState: one IPv4
// address dump and the arp_ignore files under /proc/sys/net/ipv4/conf;
// what it returns answers, purely, whether the kernel itself would answer
// an ARP request (ARPState.KernelAnswers, after the kernel's arp_ignore
// levels). Default and Resolve are pure: they take a list and return names,
// never log and never look at the system, so every rule is table-tested.
//
// Invariants:
//   - An address that is tentative (IPv6 duplicate address detection still
//     running) or failed duplicate address detection does not count: the
//     responders cannot use it yet.
//   - Default never returns the loopback, a down interface, an interface
//     without broadcast, a NOARP interface, an interface with only
//     link-local addresses (every pod's veth has one) or a port of a bond
//     or bridge (the master is the interface that carries the addresses
//     and answers).
//   - Both Default and Resolve return names in a stable order (list order
//     for Default, the caller's order for Resolve) without duplicates, so
//     the same inputs give the same output.
package ifaces
