package k8s

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/kube"
)

// LoadResources reads every configuration object in namespace ns, and the
// legacy ConfigMap if it exists, from r (normally a cache).
func LoadResources(ctx context.Context, r client.Reader, ns string) (config.Resources, error) {
	return kube.LoadResources(ctx, Reader(r), ns)
}
