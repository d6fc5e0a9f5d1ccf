package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/api/v1beta1"
)

// NewScheme returns a scheme with exactly the API groups the speaker uses:
// core/v1, discovery.k8s.io/v1 and herald.dev/v1beta1. It deliberately
// leaves out client-go's kubernetes/scheme, which would import every
// k8s.io/api group.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []struct {
		name string
		add  func(*runtime.Scheme) error
	}{
		{"core/v1", corev1.AddToScheme},
		{"discovery.k8s.io/v1", discoveryv1.AddToScheme},
		{"herald.dev/v1beta1", v1beta1.AddToScheme},
	} {
		if err := add.add(s); err != nil {
			return nil, fmt.Errorf("add %s to scheme: %w", add.name, err)
		}
	}
	return s, nil
}
