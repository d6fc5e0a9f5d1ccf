package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
)

// ErrNoInformer is returned (wrapped) by the Cache's Reader methods for a
// kind no informer was declared for.
var ErrNoInformer = errors.New("no informer for kind")

// InformerOptions select what an informer watches and how it stores it.
type InformerOptions struct {
	// Namespace to watch; "" is every namespace, and the only choice for
	// cluster-scoped kinds.
	Namespace string
	// Labels every watched object must have; nil selects everything.
	Labels labels.Set
	// Fields selects objects by field (such as metadata.name), as the API
	// server supports them for the kind; nil selects everything.
	Fields fields.Selector
	// Transform, when set, replaces each object the informer receives
	// before it is stored and handed to handlers; it may return another
	// type (then the Cache's Get and List refuse the kind, read Store
	// instead). It runs after managedFields and TypeMeta are cleared.
	// client-go may hand an object to the transform twice (watch-list
	// mode transforms, then stores): Transform is only called with
	// objects of the informer's type, and must give the same result when
	// called again on its own output of that type.
	Transform func(any) (any, error)
}

// Informer is one kind's informer in a Cache.
type Informer struct {
	informer toolscache.SharedIndexInformer
	res      Resource
	objType  reflect.Type
}

// AddHandler adds h to the informer's event handlers. Handlers added after
// the informer started get an add for each object already stored.
func (i *Informer) AddHandler(h toolscache.ResourceEventHandler) error {
	if _, err := i.informer.AddEventHandler(h); err != nil {
		return fmt.Errorf("add handler to %s informer: %w", i.res.Resource, err)
	}
	return nil
}

// Store is the informer's store: the objects it holds, keyed
// "namespace/name" ("name" for cluster-scoped kinds), transformed. They
// are shared: read-only.
func (i *Informer) Store() toolscache.Store { return i.informer.GetStore() }

// Cache holds informers, one per kind, and reads from them: it is a Reader
// over what they hold (so it answers only for declared kinds, and only
// with what their selectors let in). Declare informers, add handlers,
// then Run; read after WaitForSync.
type Cache struct {
	api *APIClient

	mu        sync.Mutex
	started   bool
	informers map[schema.GroupVersionKind]*Informer
}

var _ Reader = (*Cache)(nil)

// NewCache returns a Cache whose informers list and watch through api.
func NewCache(api *APIClient) *Cache {
	return &Cache{api: api, informers: map[schema.GroupVersionKind]*Informer{}}
}

// Informer declares the informer for obj's kind (obj's value is not
// used). One informer per kind, declared before Run.
func (c *Cache) Informer(obj Object, opts InformerOptions) (*Informer, error) {
	rc, r, err := c.api.clientFor(obj, false)
	if err != nil {
		return nil, err
	}
	if !r.Namespaced && opts.Namespace != "" {
		return nil, fmt.Errorf("%s informer: %s are cluster-scoped, no namespace", r.Resource, r.Resource)
	}
	sel, err := labelSelector(opts.Labels)
	if err != nil {
		return nil, fmt.Errorf("%s informer: %w", r.Resource, err)
	}
	labelSel, fieldSel := sel.String(), ""
	if opts.Fields != nil {
		fieldSel = opts.Fields.String()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return nil, fmt.Errorf("%s informer: the cache has started", r.Resource)
	}
	if _, ok := c.informers[r.GroupVersionKind]; ok {
		return nil, fmt.Errorf("%s informer: declared twice", r.Resource)
	}
	lw := toolscache.NewFilteredListWatchFromClient(rc, r.Resource, opts.Namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = labelSel
		o.FieldSelector = fieldSel
	})
	inf := toolscache.NewSharedIndexInformerWithOptions(lw, obj.DeepCopyObject(), toolscache.SharedIndexInformerOptions{
		Indexers:          toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc},
		ObjectDescription: r.GroupVersionKind.String(),
	})
	objType := reflect.TypeOf(obj)
	if err := inf.SetTransform(transform(objType, opts.Transform)); err != nil {
		return nil, fmt.Errorf("%s informer: %w", r.Resource, err)
	}
	i := &Informer{informer: inf, res: r, objType: objType}
	c.informers[r.GroupVersionKind] = i
	return i, nil
}

// transform returns the informer transform: on objects of objType, clear
// managedFields (a large part of many objects, never read) and TypeMeta
// (sent on some objects and not others), then apply user. Other objects
// were transformed already and pass unchanged.
func transform(objType reflect.Type, user func(any) (any, error)) toolscache.TransformFunc {
	return func(in any) (any, error) {
		if reflect.TypeOf(in) != objType {
			return in, nil
		}
		if m, ok := in.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		if o, ok := in.(runtime.Object); ok {
			o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		}
		if user == nil {
			return in, nil
		}
		return user(in)
	}
}

// Run runs every declared informer until ctx ends, then returns nil once
// they have stopped. A Cache runs once.
func (c *Cache) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("cache: Run called twice")
	}
	c.started = true
	informers := make([]*Informer, 0, len(c.informers))
	for _, i := range c.informers {
		informers = append(informers, i)
	}
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, i := range informers {
		wg.Go(func() { i.informer.RunWithContext(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// syncPoll is how often WaitForSync looks. client-go's WaitForCacheSync
// looks every 100 ms, which held every start (the first pass, the BGP
// sessions) back by up to 100 ms after the lists had arrived; a look is
// a few atomic loads.
const syncPoll = 5 * time.Millisecond

// WaitForSync waits until every declared informer holds its initial list;
// false if ctx ends first.
func (c *Cache) WaitForSync(ctx context.Context) bool {
	c.mu.Lock()
	infs := make([]*Informer, 0, len(c.informers))
	for _, i := range c.informers {
		infs = append(infs, i)
	}
	c.mu.Unlock()
	return WaitForSyncOf(ctx, infs...)
}

// WaitForSyncOf waits until the given informers hold their initial lists;
// false if ctx ends first.
func WaitForSyncOf(ctx context.Context, infs ...*Informer) bool {
	err := wait.PollUntilContextCancel(ctx, syncPoll, true, func(context.Context) (bool, error) {
		for _, i := range infs {
			if !i.informer.HasSynced() {
				return false, nil
			}
		}
		return true, nil
	})
	return err == nil
}

// informerFor returns the informer declared for obj's kind (a list's item
// kind when list is set).
func (c *Cache) informerFor(obj runtime.Object, list bool) (*Informer, error) {
	_, r, err := c.api.clientFor(obj, list)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.informers[r.GroupVersionKind]
	if !ok {
		return nil, fmt.Errorf("%w %s (%T)", ErrNoInformer, r.GroupVersionKind.Kind, obj)
	}
	return i, nil
}

// Get fills obj with a copy of the stored object key names; a NotFound API
// error when the informer holds none (not synced yet, absent, or not
// selected by the informer's options).
func (c *Cache) Get(_ context.Context, key types.NamespacedName, obj Object) error {
	i, err := c.informerFor(obj, false)
	if err != nil {
		return err
	}
	if err := checkNamespace(i.res, key.Namespace); err != nil {
		return err
	}
	storeKey := key.Name
	if i.res.Namespaced {
		storeKey = key.Namespace + "/" + key.Name
	}
	item, ok, err := i.informer.GetIndexer().GetByKey(storeKey)
	if err != nil {
		return fmt.Errorf("get %s %s from cache: %w", i.res.Resource, storeKey, err)
	}
	if !ok {
		return apierrors.NewNotFound(i.res.GroupResource(), key.Name)
	}
	stored, ok := item.(runtime.Object)
	if !ok || reflect.TypeOf(item) != reflect.TypeOf(obj) {
		return fmt.Errorf("get %s %s from cache: stored as %T, not %T", i.res.Resource, storeKey, item, obj)
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored.DeepCopyObject()).Elem())
	return nil
}

// List fills list's Items with the stored objects opts select (a namespace
// is ignored for cluster-scoped kinds). The items are shallow copies of
// the cache's objects and share their maps, slices and pointers: they are
// read-only, copy one (DeepCopy) before changing it.
func (c *Cache) List(_ context.Context, list ObjectList, opts ...ListOption) error {
	i, err := c.informerFor(list, true)
	if err != nil {
		return err
	}
	o, sel, err := applySelect(opts)
	if err != nil {
		return err
	}
	var items []any
	if o.Namespace != "" && i.res.Namespaced {
		items, err = i.informer.GetIndexer().ByIndex(toolscache.NamespaceIndex, o.Namespace)
		if err != nil {
			return fmt.Errorf("list %s from cache: %w", i.res.Resource, err)
		}
	} else {
		items = i.informer.GetIndexer().List()
	}
	objs := make([]runtime.Object, 0, len(items))
	for _, item := range items {
		if reflect.TypeOf(item) != i.objType {
			return fmt.Errorf("list %s from cache: stored as %T, not %v", i.res.Resource, item, i.objType)
		}
		if !sel.Empty() && !sel.Matches(labels.Set(item.(metav1.Object).GetLabels())) {
			continue
		}
		objs = append(objs, item.(runtime.Object))
	}
	if err := meta.SetList(list, objs); err != nil {
		return fmt.Errorf("list %s from cache: %w", i.res.Resource, err)
	}
	return nil
}
