// Package manifests holds Herald's installation manifests (YAML, no Go
// code): base/ (kubectl apply -k), overlays/ and components/ (layer 2
// only, Prometheus), the generated crd/, rbac/ and webhook/, and the
// rendered single file herald.yaml. `make manifests` regenerates what is
// generated; `make verify` fails when it drifts.
//
// Its tests check the manifests against a real kube-apiserver (envtest):
// every file, herald.yaml and each overlay is accepted by
// `kubectl apply --dry-run=server`; the Pods pass their namespace's Pod
// Security level; and the RBAC lets the controller, run with its
// ServiceAccount's token, do its whole job, and the speaker make its
// calls, while refusing what each must not do.
package manifests
