// Package e2e is Herald's end-to-end suite (files with the build tag e2e):
// scenarios that check what a user sees, on a lab of network namespaces
// (package lab) or a kind cluster, through a kubeconfig and a lab.Driver.
// Run it with `make e2e` (root); see README.md.
package e2e
