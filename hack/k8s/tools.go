//go:build tools

// Package k8s pins the Kubernetes and etcd server binaries Herald's tests run
// against. It is its own module so their large dependency graph never enters
// Herald's go.mod.
package k8s

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
