package k8s

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/kube"
)

// Reader adapts a controller-runtime reader (the controller's cache, or a
// fake client in tests) to kube.Reader. Lists are not deep-copied: kube's
// readers return read-only objects.
func Reader(r client.Reader) kube.Reader { return crClient{r: r} }

// Client adapts a controller-runtime client to kube.Client.
func Client(c client.Client) kube.Client { return crClient{r: c, w: c} }

type crClient struct {
	r client.Reader
	w client.Client // nil for a Reader
}

var _ kube.Client = crClient{}

// options turns opts into controller-runtime's, which serve lists and
// deletions alike: an empty namespace is every namespace, no labels
// select everything.
func options(opts []kube.ListOption) (client.InNamespace, client.MatchingLabels) {
	o := kube.Apply(opts...)
	return client.InNamespace(o.Namespace), client.MatchingLabels(o.Labels)
}

func (c crClient) Get(ctx context.Context, key types.NamespacedName, obj kube.Object) error {
	return c.r.Get(ctx, key, obj)
}

func (c crClient) List(ctx context.Context, list kube.ObjectList, opts ...kube.ListOption) error {
	ns, labels := options(opts)
	return c.r.List(ctx, list, ns, labels, client.UnsafeDisableDeepCopy)
}

func (c crClient) Create(ctx context.Context, obj kube.Object) error { return c.w.Create(ctx, obj) }

func (c crClient) Delete(ctx context.Context, obj kube.Object) error { return c.w.Delete(ctx, obj) }

func (c crClient) DeleteAllOf(ctx context.Context, obj kube.Object, opts ...kube.ListOption) error {
	ns, labels := options(opts)
	return c.w.DeleteAllOf(ctx, obj, ns, labels)
}

func (c crClient) MergePatchStatus(ctx context.Context, obj kube.Object, patch []byte) error {
	return c.w.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
}
