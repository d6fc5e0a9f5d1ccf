package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config/legacy"
	"github.com/herald-lb/herald/internal/model"
)

// Resources is everything Build reads: the configuration objects, in any
// order, and the legacy ConfigMap if it exists.
type Resources struct {
	Pools       []v1beta1.IPAddressPool
	L2Advs      []v1beta1.L2Advertisement
	BGPAdvs     []v1beta1.BGPAdvertisement
	Peers       []v1beta1.BGPPeer
	Communities []v1beta1.Community
	BFDProfiles []v1beta1.BFDProfile
	// ConfigMap is the herald-config ConfigMap's "config" key, nil when
	// the ConfigMap does not exist.
	ConfigMap *LegacyData
}

// LegacyData is the legacy ConfigMap's configuration in MetalLB v0.12
// format. Empty Namespace and Name mean Options.Namespace and
// v1beta1.LegacyConfigMapName.
type LegacyData struct {
	Namespace, Name string
	Data            string
}

// Options are what Build needs besides the objects.
type Options struct {
	// Namespace every configuration object must live in; empty means
	// v1beta1.Namespace.
	Namespace string
}

// Defaults applied by Build.
const (
	DefaultAggregationLength   = 32
	DefaultAggregationLengthV6 = 128
	DefaultPeerPort            = 179
	DefaultHoldTime            = 90 * time.Second
	DefaultConnectTime         = 10 * time.Second
	DefaultBFDInterval         = 300 * time.Millisecond
	DefaultBFDDetectMultiplier = 3
	DefaultBFDMinimumTTL       = 254
)

// Build validates res and returns the model it describes, or a nil model
// and an error (an *Error; see Errors) listing every problem found. It is
// pure and does not modify res.
func Build(res Resources, opts Options) (*model.Config, error) {
	b := &builder{ns: opts.Namespace}
	if b.ns == "" {
		b.ns = v1beta1.Namespace
	}
	var fromCM legacy.Objects
	if res.ConfigMap != nil {
		cm := *res.ConfigMap
		if cm.Namespace == "" {
			cm.Namespace = b.ns
		}
		if cm.Name == "" {
			cm.Name = v1beta1.LegacyConfigMapName
		}
		b.cm = &cm
		f, err := legacy.Parse([]byte(cm.Data))
		var perr *legacy.Error
		switch {
		case errors.As(err, &perr):
			for _, fe := range perr.Errors {
				b.errs = append(b.errs, ObjectError{Kind: KindConfigMap, Namespace: cm.Namespace, Name: cm.Name, Field: fe.Path, Message: fe.Message})
			}
		case err != nil:
			b.errs = append(b.errs, ObjectError{Kind: KindConfigMap, Namespace: cm.Namespace, Name: cm.Name, Message: err.Error()})
		default:
			fromCM = f.Resources(cm.Namespace)
		}
	}

	communities := collect(b, "Community", res.Communities, fromCM.Communities)
	pools := collect(b, "IPAddressPool", res.Pools, fromCM.Pools)
	l2Advs := collect(b, "L2Advertisement", res.L2Advs, fromCM.L2Advs)
	bgpAdvs := collect(b, "BGPAdvertisement", res.BGPAdvs, fromCM.BGPAdvs)
	peers := collect(b, "BGPPeer", res.Peers, fromCM.Peers)
	bfdProfiles := collect(b, "BFDProfile", res.BFDProfiles, fromCM.BFDProfiles)

	cfg := &model.Config{Pools: map[string]*model.Pool{}}
	aliases := b.communities(communities)
	b.pools(cfg, pools)
	peerSet := b.peers(cfg, peers, b.bfdProfiles(bfdProfiles))
	b.l2Advertisements(cfg, l2Advs)
	b.bgpAdvertisements(cfg, bgpAdvs, peerSet, aliases)

	if len(b.errs) > 0 {
		return nil, &Error{Errors: sortErrors(b.errs)}
	}
	return cfg, nil
}

// With returns a copy of r in which obj (a pointer to an IPAddressPool,
// L2Advertisement, BGPAdvertisement, BGPPeer, Community or BFDProfile) replaces the
// object of the same kind, namespace and name, or is added. The webhook
// validates an object by building With it. r is not modified.
func (r Resources) With(obj any) (Resources, error) {
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		r.Pools = with(r.Pools, o)
	case *v1beta1.L2Advertisement:
		r.L2Advs = with(r.L2Advs, o)
	case *v1beta1.BGPAdvertisement:
		r.BGPAdvs = with(r.BGPAdvs, o)
	case *v1beta1.BGPPeer:
		r.Peers = with(r.Peers, o)
	case *v1beta1.Community:
		r.Communities = with(r.Communities, o)
	case *v1beta1.BFDProfile:
		r.BFDProfiles = with(r.BFDProfiles, o)
	default:
		return r, fmt.Errorf("config: %T is not a configuration object", obj)
	}
	return r, nil
}

// Without returns a copy of r without the object of obj's kind (a pointer
// to an IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer,
// Community or BFDProfile), namespace and name. The webhook validates a deletion by
// building Without the object. r is not modified.
func (r Resources) Without(obj any) (Resources, error) {
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		r.Pools = without(r.Pools, o)
	case *v1beta1.L2Advertisement:
		r.L2Advs = without(r.L2Advs, o)
	case *v1beta1.BGPAdvertisement:
		r.BGPAdvs = without(r.BGPAdvs, o)
	case *v1beta1.BGPPeer:
		r.Peers = without(r.Peers, o)
	case *v1beta1.Community:
		r.Communities = without(r.Communities, o)
	case *v1beta1.BFDProfile:
		r.BFDProfiles = without(r.BFDProfiles, o)
	default:
		return r, fmt.Errorf("config: %T is not a configuration object", obj)
	}
	return r, nil
}

func without[T any, PT interface {
	*T
	metav1.Object
}](list []T, obj PT) []T {
	return slices.DeleteFunc(slices.Clone(list), func(o T) bool {
		m := PT(&o)
		return m.GetNamespace() == obj.GetNamespace() && m.GetName() == obj.GetName()
	})
}

func with[T any, PT interface {
	*T
	metav1.Object
}](list []T, obj PT) []T {
	out := slices.Clone(list)
	for i := range out {
		o := PT(&out[i])
		if o.GetNamespace() == obj.GetNamespace() && o.GetName() == obj.GetName() {
			out[i] = *obj
			return out
		}
	}
	return append(out, *obj)
}

// builder accumulates errors while Build walks the objects.
type builder struct {
	ns   string
	cm   *LegacyData // with defaults applied; nil without a ConfigMap
	errs []ObjectError
}

// object is a configuration object and where it came from.
type object struct {
	kind string
	meta metav1.Object
	cm   bool // converted from the ConfigMap
}

// entry is an object of type T being built.
type entry[T any] struct {
	obj *T
	*object
}

// add records a problem at field of o.
func (b *builder) add(o *object, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if o.cm {
		path, _ := legacy.ConfigMapPath(o.meta, field)
		b.errs = append(b.errs, ObjectError{Kind: KindConfigMap, Namespace: b.cm.Namespace, Name: b.cm.Name, Field: path, Message: msg})
		return
	}
	b.errs = append(b.errs, ObjectError{Kind: o.kind, Namespace: o.meta.GetNamespace(), Name: o.meta.GetName(), Field: field, Message: msg})
}

// addDangling is add for a reference to an object that does not exist.
func (b *builder) addDangling(o *object, field, format string, args ...any) {
	b.add(o, field, format, args...)
	b.errs[len(b.errs)-1].Dangling = true
}

// describe names o for messages about another object.
func (b *builder) describe(o *object) string {
	if o.cm {
		path, _ := legacy.ConfigMapPath(o.meta, "")
		return fmt.Sprintf("ConfigMap %s/%s %s", b.cm.Namespace, b.cm.Name, path)
	}
	return fmt.Sprintf("%s %q", o.kind, o.meta.GetName())
}

// article returns "a" or "an" for a kind, as the name is spoken.
func article(kind string) string {
	switch kind {
	case "IPAddressPool", "L2Advertisement":
		return "an"
	}
	return "a"
}

// collect checks the metadata of a kind's objects, reports objects in the
// wrong namespace and names defined twice, and returns the rest sorted by
// name. CRD objects win over ConfigMap ones of the same name.
func collect[T any, PT interface {
	*T
	metav1.Object
}](b *builder, kind string, crds, fromCM []T) []entry[T] {
	var list []entry[T]
	for i := range crds {
		o := PT(&crds[i])
		e := entry[T]{obj: &crds[i], object: &object{kind: kind, meta: o}}
		switch ns := o.GetNamespace(); {
		case ns == "":
			b.add(e.object, "metadata.namespace", "required; objects must live in %s", b.ns)
			continue
		case ns != b.ns:
			b.add(e.object, "metadata.namespace", "%q is not %s; objects must live in %s", ns, b.ns, b.ns)
			continue
		case o.GetName() == "":
			b.add(e.object, "metadata.name", "required")
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(o.GetName()); len(msgs) > 0 {
			b.add(e.object, "metadata.name", "%s", strings.Join(msgs, "; "))
		}
		list = append(list, e)
	}
	sortEntries(list)
	unique := list[:0]
	for _, e := range list {
		if n := len(unique); n > 0 && unique[n-1].meta.GetName() == e.meta.GetName() {
			b.add(e.object, "metadata.name", "another %s has the same name", kind)
			continue
		}
		unique = append(unique, e)
	}
	list = unique

	byName := map[string]*object{}
	crdByName := map[string]*T{}
	for _, e := range list {
		byName[e.meta.GetName()] = e.object
		crdByName[e.meta.GetName()] = e.obj
	}
	for i := range fromCM {
		o := PT(&fromCM[i])
		e := entry[T]{obj: &fromCM[i], object: &object{kind: kind, meta: o, cm: true}}
		if prev, dup := byName[o.GetName()]; dup {
			if crd, ok := crdByName[o.GetName()]; ok && !prev.cm && sameSpec(crd, &fromCM[i]) {
				// The object converted from this ConfigMap entry
				// (convert-configmap): it takes the entry's place, so
				// the ConfigMap can go without a gap.
				continue
			}
			if prev.cm {
				b.add(e.object, "metadata.name", "%q is also the name of %s", o.GetName(), b.describe(prev))
			} else {
				b.add(prev, "metadata.name", "defined both as %s %s and in ConfigMap %s/%s", article(kind), kind, b.cm.Namespace, b.cm.Name)
			}
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(o.GetName()); len(msgs) > 0 {
			b.add(e.object, "metadata.name", "%q: %s", o.GetName(), strings.Join(msgs, "; "))
		}
		byName[o.GetName()] = e.object
		list = append(list, e)
	}
	sortEntries(list)
	return list
}

// sameSpec reports whether two configuration objects have the same spec.
func sameSpec(a, b any) bool {
	sa := SpecOf(a)
	return sa != nil && equality.Semantic.DeepEqual(sa, SpecOf(b))
}

// SpecOf returns the spec of a configuration object (a pointer to one of
// the six kinds), nil for anything else: with the labels, all that the
// configuration reads of an object.
func SpecOf(obj any) any {
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		return o.Spec
	case *v1beta1.L2Advertisement:
		return o.Spec
	case *v1beta1.BGPAdvertisement:
		return o.Spec
	case *v1beta1.BGPPeer:
		return o.Spec
	case *v1beta1.Community:
		return o.Spec
	case *v1beta1.BFDProfile:
		return o.Spec
	}
	return nil
}

// sortEntries sorts by name, then by content so that even duplicates sort
// the same whatever the input order.
func sortEntries[T any](list []entry[T]) {
	slices.SortStableFunc(list, func(a, c entry[T]) int {
		if n := strings.Compare(a.meta.GetName(), c.meta.GetName()); n != 0 {
			return n
		}
		ja, _ := json.Marshal(a.obj)
		jc, _ := json.Marshal(c.obj)
		return bytes.Compare(ja, jc)
	})
}
