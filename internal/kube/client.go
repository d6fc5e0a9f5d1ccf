package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/herald-lb/herald/api/v1beta1"
)

// ErrUnsupportedKind is returned (wrapped, with the Go type) for an object
// whose kind is not in the scheme or not one of the kinds this package
// serves.
var ErrUnsupportedKind = errors.New("unsupported kind")

// Resource says how the API server serves a kind.
type Resource struct {
	// GroupVersionKind is the kind of the object (never of a list).
	GroupVersionKind schema.GroupVersionKind
	// Resource is the plural resource name in URLs, such as "services".
	Resource string
	// Namespaced is false for cluster-scoped kinds such as Node.
	Namespaced bool
}

// GroupResource is the group and resource, as API errors name them.
func (r Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.GroupVersionKind.Group, Resource: r.Resource}
}

// resources lists every kind the package serves: the kinds the speaker
// reads and writes, and nothing else. An explicit table rather than API
// discovery: no requests at start, and no surprise kinds.
var resources = byKind(
	[]Resource{
		{corev1.SchemeGroupVersion.WithKind("Service"), "services", true},
		{corev1.SchemeGroupVersion.WithKind("Node"), "nodes", false},
		{corev1.SchemeGroupVersion.WithKind("Secret"), "secrets", true},
		{corev1.SchemeGroupVersion.WithKind("ConfigMap"), "configmaps", true},
		{corev1.SchemeGroupVersion.WithKind("Event"), "events", true},
		{discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), "endpointslices", true},
		{v1beta1.GroupVersion.WithKind("IPAddressPool"), "ipaddresspools", true},
		{v1beta1.GroupVersion.WithKind("L2Advertisement"), "l2advertisements", true},
		{v1beta1.GroupVersion.WithKind("BGPAdvertisement"), "bgpadvertisements", true},
		{v1beta1.GroupVersion.WithKind("BGPPeer"), "bgppeers", true},
		{v1beta1.GroupVersion.WithKind("Community"), "communities", true},
		{v1beta1.GroupVersion.WithKind("BFDProfile"), "bfdprofiles", true},
		{v1beta1.GroupVersion.WithKind("ServiceL2Status"), "servicel2statuses", true},
		{v1beta1.GroupVersion.WithKind("ServiceBGPStatus"), "servicebgpstatuses", true},
		{v1beta1.GroupVersion.WithKind("BGPSessionStatus"), "bgpsessionstatuses", true},
	},
)

// byKind indexes rs by kind.
func byKind(rs []Resource) map[schema.GroupVersionKind]Resource {
	m := make(map[schema.GroupVersionKind]Resource, len(rs))
	for _, r := range rs {
		m[r.GroupVersionKind] = r
	}
	return m
}

// builtin reports whether gv is one of Kubernetes' own API groups, which
// the API server serves as protobuf too.
func builtin(gv schema.GroupVersion) bool {
	return gv.Group == "" || !strings.Contains(gv.Group, ".") || strings.HasSuffix(gv.Group, ".k8s.io")
}

// APIClient reads and writes objects directly against the API server,
// with one REST client per API group version and one rate limiter shared
// by all of them. Objects it returns have an empty TypeMeta, as client-go's
// typed clients return them; the scheme knows their kind.
type APIClient struct {
	scheme  *runtime.Scheme
	clients map[schema.GroupVersion]*rest.RESTClient
}

var _ Client = (*APIClient)(nil)

// NewClient returns a client for cfg (which it copies, whatever content
// type it asks for: Kubernetes' own kinds travel as protobuf, which the
// API server and this process encode and decode at a fraction of JSON's
// cost, and Herald's kinds as JSON, the only encoding the API server has
// for custom resources). Kinds are mapped to resources through scheme,
// which NewScheme builds.
//
// cfg's rate limiter, or one built from its QPS and Burst (client-go's
// defaults when zero, none when QPS is negative), is shared by every API
// group, so cfg.QPS bounds the whole process's requests.
func NewClient(cfg *rest.Config, scheme *runtime.Scheme) (*APIClient, error) {
	if cfg == nil || scheme == nil {
		return nil, errors.New("kube: NewClient needs a rest.Config and a scheme")
	}
	base := rest.CopyConfig(cfg)
	base.ContentType = runtime.ContentTypeJSON
	base.AcceptContentTypes = runtime.ContentTypeJSON
	base.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if base.UserAgent == "" {
		base.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if base.RateLimiter == nil {
		qps, burst := base.QPS, base.Burst
		if qps == 0 {
			qps = rest.DefaultQPS
		}
		if burst == 0 {
			burst = rest.DefaultBurst
		}
		if qps > 0 {
			base.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(qps, burst)
		}
	}
	httpClient, err := rest.HTTPClientFor(base)
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	c := &APIClient{scheme: scheme, clients: map[schema.GroupVersion]*rest.RESTClient{}}
	for gvk := range resources {
		gv := gvk.GroupVersion()
		if _, ok := c.clients[gv]; ok {
			continue
		}
		gvCfg := rest.CopyConfig(base) // shares base.RateLimiter
		gvCfg.GroupVersion = &gv
		gvCfg.APIPath = "/apis"
		if gv.Group == "" {
			gvCfg.APIPath = "/api"
		}
		if builtin(gv) {
			gvCfg.ContentType = runtime.ContentTypeProtobuf
			gvCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		}
		rc, err := rest.RESTClientForConfigAndClient(gvCfg, httpClient)
		if err != nil {
			return nil, fmt.Errorf("REST client for %s: %w", gv, err)
		}
		c.clients[gv] = rc
	}
	return c, nil
}

// clientFor maps obj (a list when list is set) to its item kind's REST
// client and resource; an ErrUnsupportedKind error for kinds outside the
// scheme or the package's table.
func (c *APIClient) clientFor(obj runtime.Object, list bool) (*rest.RESTClient, Resource, error) {
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return nil, Resource{}, fmt.Errorf("%w: %T is not in the scheme", ErrUnsupportedKind, obj)
	}
	gvk := gvks[0]
	if list {
		kind, ok := strings.CutSuffix(gvk.Kind, "List")
		if !ok {
			return nil, Resource{}, fmt.Errorf("%w: %T (%s) is not a list", ErrUnsupportedKind, obj, gvk.Kind)
		}
		gvk.Kind = kind
	}
	r, ok := resources[gvk]
	if !ok {
		return nil, Resource{}, fmt.Errorf("%w: %T (%s)", ErrUnsupportedKind, obj, gvk)
	}
	return c.clients[gvk.GroupVersion()], r, nil
}

// checkNamespace refuses an empty namespace for a namespaced kind. (A
// namespace given for a cluster-scoped kind is ignored.)
func checkNamespace(r Resource, ns string) error {
	if r.Namespaced && ns == "" {
		return fmt.Errorf("%s: namespace required", r.Resource)
	}
	return nil
}

// applySelect applies opts and returns them with their label selector.
func applySelect(opts []ListOption) (ListOptions, labels.Selector, error) {
	o := Apply(opts...)
	sel, err := labelSelector(o.Labels)
	return o, sel, err
}

// labelSelector returns the selector for l: everything when l is empty,
// an error when a key or value is not a valid label.
func labelSelector(l labels.Set) (labels.Selector, error) {
	if len(l) == 0 {
		return labels.Everything(), nil
	}
	s, err := labels.ValidatedSelectorFromSet(l)
	if err != nil {
		return nil, fmt.Errorf("label selector: %w", err)
	}
	return s, nil
}

// Get fills obj with the object key names, read from the API server.
func (c *APIClient) Get(ctx context.Context, key types.NamespacedName, obj Object) error {
	rc, r, err := c.clientFor(obj, false)
	if err != nil {
		return err
	}
	if err := checkNamespace(r, key.Namespace); err != nil {
		return err
	}
	err = rc.Get().NamespaceIfScoped(key.Namespace, r.Namespaced).Resource(r.Resource).Name(key.Name).
		Do(ctx).Into(obj)
	if err != nil {
		return fmt.Errorf("get %s %s: %w", r.Resource, key, err)
	}
	return nil
}

// List fills list with the objects opts select, read from the API server
// in one request. A namespace is ignored for cluster-scoped kinds.
func (c *APIClient) List(ctx context.Context, list ObjectList, opts ...ListOption) error {
	rc, r, err := c.clientFor(list, true)
	if err != nil {
		return err
	}
	o, sel, err := applySelect(opts)
	if err != nil {
		return err
	}
	err = rc.Get().NamespaceIfScoped(o.Namespace, r.Namespaced).Resource(r.Resource).
		VersionedParams(&metav1.ListOptions{LabelSelector: sel.String()}, metav1.ParameterCodec).
		Do(ctx).Into(list)
	if err != nil {
		return fmt.Errorf("list %s: %w", r.Resource, err)
	}
	// The API server sends apiVersion and kind on custom resources in a
	// list, not on built-in ones; clear them so every object looks alike.
	return meta.EachListItem(list, func(o runtime.Object) error {
		o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		return nil
	})
}

// Create creates obj and fills it from the API server's answer.
func (c *APIClient) Create(ctx context.Context, obj Object) error {
	rc, r, err := c.clientFor(obj, false)
	if err != nil {
		return err
	}
	if err := checkNamespace(r, obj.GetNamespace()); err != nil {
		return err
	}
	err = rc.Post().NamespaceIfScoped(obj.GetNamespace(), r.Namespaced).Resource(r.Resource).
		Body(obj).Do(ctx).Into(obj)
	if err != nil {
		return fmt.Errorf("create %s %s: %w", r.Resource, objectName(obj), err)
	}
	return nil
}

// Delete deletes the object obj names.
func (c *APIClient) Delete(ctx context.Context, obj Object) error {
	rc, r, err := c.clientFor(obj, false)
	if err != nil {
		return err
	}
	if err := checkNamespace(r, obj.GetNamespace()); err != nil {
		return err
	}
	err = rc.Delete().NamespaceIfScoped(obj.GetNamespace(), r.Namespaced).Resource(r.Resource).
		Name(obj.GetName()).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", r.Resource, objectName(obj), err)
	}
	return nil
}

// DeleteAllOf deletes, in one collection request, every object of obj's
// kind that opts select; namespaced kinds need a namespace.
func (c *APIClient) DeleteAllOf(ctx context.Context, obj Object, opts ...ListOption) error {
	rc, r, err := c.clientFor(obj, false)
	if err != nil {
		return err
	}
	o, sel, err := applySelect(opts)
	if err != nil {
		return err
	}
	if err := checkNamespace(r, o.Namespace); err != nil {
		return err
	}
	err = rc.Delete().NamespaceIfScoped(o.Namespace, r.Namespaced).Resource(r.Resource).
		VersionedParams(&metav1.ListOptions{LabelSelector: sel.String()}, metav1.ParameterCodec).
		Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("delete collection of %s: %w", r.Resource, err)
	}
	return nil
}

// MergePatchStatus applies the JSON merge patch to the status subresource
// of the object obj names and fills obj from the answer.
func (c *APIClient) MergePatchStatus(ctx context.Context, obj Object, patch []byte) error {
	rc, r, err := c.clientFor(obj, false)
	if err != nil {
		return err
	}
	if err := checkNamespace(r, obj.GetNamespace()); err != nil {
		return err
	}
	err = rc.Patch(types.MergePatchType).NamespaceIfScoped(obj.GetNamespace(), r.Namespaced).
		Resource(r.Resource).Name(obj.GetName()).SubResource("status").Body(patch).Do(ctx).Into(obj)
	if err != nil {
		return fmt.Errorf("patch status of %s %s: %w", r.Resource, objectName(obj), err)
	}
	return nil
}

// objectName is obj's namespace/name, or name when it has no namespace.
func objectName(obj metav1.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
