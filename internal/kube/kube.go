// Package kube is the speaker's Kubernetes adapter, on plain client-go: a
// scheme with only the kinds the speaker reads and writes (core/v1,
// discovery/v1 and Herald's herald.dev/v1beta1), REST clients for them,
// informers with transforms, a cache Reader over the informers, and an
// event sink.
//
// It exists for the speaker's memory: controller-runtime's client and
// cache, and client-go's typed clientset, import and initialize every
// k8s.io/api group (6 MB of code touched at start on every node). This
// package must never import them; a test in the package checks it.
//
// Invariants:
//   - Objects a cache Reader returns from List are the cache's own, shared
//     and read-only: callers copy before they change one. Get copies.
//   - Every write goes to the API server; nothing is cached on write.
package kube

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Object is a Kubernetes object (the method set of controller-runtime's
// client.Object, so the two convert freely in tests).
type Object interface {
	metav1.Object
	runtime.Object
}

// ObjectList is a list of Kubernetes objects.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// ListOptions select objects: by namespace ("" is every namespace) and by
// labels (nil selects everything).
type ListOptions struct {
	Namespace string
	Labels    labels.Set
}

// ListOption sets a ListOptions field.
type ListOption func(*ListOptions)

// InNamespace selects objects in ns.
func InNamespace(ns string) ListOption { return func(o *ListOptions) { o.Namespace = ns } }

// MatchingLabels selects objects that have every label in l.
func MatchingLabels(l map[string]string) ListOption {
	return func(o *ListOptions) { o.Labels = labels.Set(l) }
}

// Apply returns the options opts set.
func Apply(opts ...ListOption) ListOptions {
	var o ListOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Reader reads objects by the Go type of obj / list.
type Reader interface {
	// Get fills obj with the object key names; a NotFound API error
	// (apierrors.IsNotFound) when there is none.
	Get(ctx context.Context, key types.NamespacedName, obj Object) error
	// List fills list's Items with the objects opts select.
	List(ctx context.Context, list ObjectList, opts ...ListOption) error
}

// Writer writes objects to the API server.
type Writer interface {
	// Create creates obj and fills it from the API server's answer.
	Create(ctx context.Context, obj Object) error
	// Delete deletes the object obj names (namespace and name).
	Delete(ctx context.Context, obj Object) error
	// DeleteAllOf deletes, in one request, every object of obj's kind
	// that opts select (namespace required for namespaced kinds).
	DeleteAllOf(ctx context.Context, obj Object, opts ...ListOption) error
	// MergePatchStatus applies a JSON merge patch to the status
	// subresource of the object obj names and fills obj from the answer.
	MergePatchStatus(ctx context.Context, obj Object, patch []byte) error
}

// Client reads and writes.
type Client interface {
	Reader
	Writer
}
