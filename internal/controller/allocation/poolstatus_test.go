package allocation

import (
	"context"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/k8s"
	"github.com/herald-lb/herald/internal/metrics"
)

// TestPoolStatusAfterRecreate: a pool deleted and created again under the
// same name, between two writes, gets its counts written again (it starts
// with none), though they did not change.
func TestPoolStatusAfterRecreate(t *testing.T) {
	ctx := context.Background()
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	pool := func() *v1beta1.IPAddressPool {
		return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: "p"},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/30"}}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(pool()).WithStatusSubresource(&v1beta1.IPAddressPool{}).Build()
	cfg, err := config.Build(config.Resources{Pools: []v1beta1.IPAddressPool{*pool()}}, config.Options{Namespace: v1beta1.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	s.alloc.SetConfig(cfg)
	s.cfg = cfg
	w := NewPoolStatusWriter(c, v1beta1.Namespace, metrics.NewController(prometheus.NewRegistry()), logr.Discard(), s)

	available := func() int64 {
		t.Helper()
		var got v1beta1.IPAddressPool
		if err := c.Get(ctx, client.ObjectKey{Namespace: v1beta1.Namespace, Name: "p"}, &got); err != nil {
			t.Fatal(err)
		}
		return got.Status.AvailableIPv4
	}
	if err := w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := available(); got != 4 {
		t.Fatalf("availableIPv4 %d, want 4", got)
	}
	if err := c.Delete(ctx, pool()); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, pool()); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := available(); got != 4 {
		t.Errorf("availableIPv4 %d after the pool was created again, want 4", got)
	}
}
