// Package lab builds and drives Herald's network lab: on one Linux machine
// (root), network namespaces for an API server (etcd, kube-apiserver,
// Herald's controller), N nodes (a speaker and a kube-proxy stand-in
// each), a router running FRR and two clients, joined by a bridge that the
// root namespace is not on. Up builds it from nothing, Down removes every
// namespace, process, link and mount it made (also after a crashed Up), and
// Attach gives any process the lab another one started: all state lives in
// the lab directory (state.json, run/*.pid, logs/).
//
// Tests act on the network only through Driver, which the netns lab (*Lab)
// and a kind cluster (*Kind) implement, and observe it with the probes in
// probe.go (arping, ping + ip neigh, curl, vtysh JSON, ip route).
//
// Invariants: every address is in a private test range inside the lab's
// namespaces; lab namespaces are named herald-{sw,api,rtr,client,l2client}
// and herald-nK, and Down touches no other; a recorded process is killed
// only when its pid and start time both match.
package lab
