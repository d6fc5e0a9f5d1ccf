package allocation

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/herald-lb/herald/internal/model"
)

// TestWriteAnnotationFallback: an API server that keeps metadata out of
// status writes (the fake client does, as the real one does for some
// kinds) still ends with the annotation, through a second patch; when
// nothing differs nothing is written.
func TestWriteAnnotationFallback(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	var writes []string
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(svc).
		WithStatusSubresource(&corev1.Service{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
				writes = append(writes, "object")
				return c.Patch(ctx, obj, p, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				writes = append(writes, sub)
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	r := &ServiceReconciler{Client: c}
	asg := model.Assignment{Pool: "basic", IPs: []netip.Addr{netip.MustParseAddr("198.18.0.10")}}

	changed, err := r.write(context.Background(), svc, asg)
	if err != nil || !changed {
		t.Fatalf("write = %v, %v; want changed", changed, err)
	}
	if want := []string{"status", "object"}; !slices.Equal(writes, want) {
		t.Errorf("writes %q, want %q", writes, want)
	}
	var got corev1.Service
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(svc), &got); err != nil {
		t.Fatal(err)
	}
	if a := got.Annotations[poolAnnotation]; a != "basic" {
		t.Errorf("annotation %q, want basic", a)
	}
	if ing := got.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != "198.18.0.10" {
		t.Errorf("status %+v, want 198.18.0.10", ing)
	}

	writes = nil
	if changed, err := r.write(context.Background(), &got, asg); err != nil || changed || len(writes) != 0 {
		t.Errorf("write of what is there = %v, %v, writes %q; want nothing", changed, err, writes)
	}
}
