package speaker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/model"
)

// L2StatusEntry is what one node announces for one Service.
type L2StatusEntry struct {
	IPs        []netip.Addr
	Interfaces []string
}

// StatusWriter keeps this node's ServiceL2Status objects equal to what it
// announces: one object per Service it answers for, deleted when it stops.
// Writes happen in the background so they never delay an announcement.
type StatusWriter struct {
	Client    kube.Client
	Namespace string
	NodeName  string
	Log       logr.Logger
	// Owner returns the owner reference to this node's Node, nil while it
	// is not known (see ownerOf).
	Owner func() *metav1.OwnerReference

	mu      sync.Mutex
	desired map[model.ServiceKey]L2StatusEntry
	gen     uint64 // counts Set calls
	notify  chan struct{}
}

// restartEvery is how many writes a pass makes before it checks for a
// newer desired state; a pass over thousands of objects (a failover onto
// this node) takes minutes at the client's QPS, and the newest state
// should not wait for its end.
const restartEvery = 50

// errNewerDesired ends a pass that a newer desired state made stale.
var errNewerDesired = errors.New("a newer desired state arrived")

// NewStatusWriter returns a writer; run it with Start.
func NewStatusWriter(c kube.Client, ns, node string, log logr.Logger) *StatusWriter {
	return &StatusWriter{Client: c, Namespace: ns, NodeName: node, Log: log, notify: make(chan struct{}, 1)}
}

// Set replaces the desired entries. It never blocks.
func (w *StatusWriter) Set(desired map[model.ServiceKey]L2StatusEntry) {
	w.mu.Lock()
	w.desired = desired
	w.gen++
	w.mu.Unlock()
	w.Kick()
}

// Kick makes the writer compare its objects with the desired entries
// again (one of its objects changed or went away). It never blocks.
func (w *StatusWriter) Kick() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// Start writes until ctx ends, retrying failed writes.
func (w *StatusWriter) Start(ctx context.Context) error {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.notify:
		case <-retry.C:
		}
		err := w.sync(ctx)
		switch {
		case errors.Is(err, errNewerDesired):
			w.Kick()
		case err != nil && ctx.Err() == nil:
			w.Log.Error(err, "writing ServiceL2Status")
			retry.Reset(2 * time.Second)
		}
	}
}

// deleteAllMin is how many stale objects, with none wanted, are deleted by
// one DeleteAllOf rather than one by one.
const deleteAllMin = 16

// L2StatusName is the name of the ServiceL2Status for a Service and node.
func L2StatusName(node string, key model.ServiceKey) string {
	return objectName(node, key.Namespace+"/"+key.Name)
}

// objectName names a status object: prefix (a node name, which ends the
// same way for every object of the node), "-" and a hash of key, 10 hex
// digits. A prefix too long for an object name (253 characters) is cut,
// and the hash then covers the whole prefix too, so two long node names
// that start alike still give two names.
func objectName(prefix, key string) string {
	const hashLen = 10
	if max := 253 - 1 - hashLen; len(prefix) > max {
		key = prefix + "\x00" + key
		prefix = strings.TrimRight(prefix[:max], ".-")
	}
	sum := sha256.Sum256([]byte(key))
	return prefix + "-" + hex.EncodeToString(sum[:hashLen/2])
}

// sync makes one pass: stale objects are deleted first (a node that no
// longer answers for a Service must stop saying so soonest), then missing
// ones created and changed ones updated. Every restartEvery writes it
// returns errNewerDesired if Set was called meanwhile.
func (w *StatusWriter) sync(ctx context.Context) error {
	w.mu.Lock()
	desired, gen := w.desired, w.gen
	w.mu.Unlock()

	// The cache's objects are only read; one is copied before it is
	// updated.
	var have v1beta1.ServiceL2StatusList
	if err := w.Client.List(ctx, &have, kube.InNamespace(w.Namespace), kube.MatchingLabels(nodeLabels(w.NodeName))); err != nil {
		return err
	}
	existing := make(map[string]*v1beta1.ServiceL2Status, len(have.Items))
	for i := range have.Items {
		existing[have.Items[i].Name] = &have.Items[i]
	}
	keep := make(map[string]bool, len(desired))
	for key := range desired {
		keep[L2StatusName(w.NodeName, key)] = true
	}
	if len(desired) == 0 && len(existing) >= deleteAllMin {
		// A restarted speaker owns nothing (no failback): one request
		// instead of one per Service.
		err := w.Client.DeleteAllOf(ctx, &v1beta1.ServiceL2Status{}, kube.InNamespace(w.Namespace),
			kube.MatchingLabels(nodeLabels(w.NodeName)))
		if err == nil {
			return nil
		}
		w.Log.Info("deleting this node's ServiceL2Status objects at once failed; deleting them one by one", "reason", err.Error())
	}
	var firstErr error
	writes := 0
	stale := func() bool {
		writes++
		if writes%restartEvery != 0 {
			return false
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.gen != gen
	}
	for name, obj := range existing {
		if !keep[name] {
			if err := w.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				firstErr = keepFirst(firstErr, err)
			}
			if stale() {
				return errNewerDesired
			}
		}
	}
	owner := ownerOf(w.Owner)
	for key, e := range desired {
		name := L2StatusName(w.NodeName, key)
		want := v1beta1.ServiceL2StatusStatus{
			Node: w.NodeName, ServiceName: key.Name, ServiceNamespace: key.Namespace,
			Interfaces: e.Interfaces,
		}
		for _, ip := range e.IPs {
			want.IPs = append(want.IPs, ip.String())
		}
		fresh := func() *v1beta1.ServiceL2Status {
			return &v1beta1.ServiceL2Status{ObjectMeta: statusMeta(w.Namespace, name, w.NodeName, owner, key)}
		}
		set := func(o *v1beta1.ServiceL2Status) { o.Status = want }
		obj, cached := existing[name]
		if cached && ownerMissing(obj, owner) {
			cached = !replaced(ctx, w.Client, obj, &firstErr)
		}
		if !cached {
			if stale() {
				return errNewerDesired
			}
			obj = fresh()
			if err := w.Client.Create(ctx, obj); err != nil {
				if !apierrors.IsAlreadyExists(err) {
					firstErr = keepFirst(firstErr, err)
				}
				// Already there, the cache does not have it yet: its
				// arrival kicks another pass.
				continue
			}
		} else if statusEqual(obj.Status, want) {
			continue
		} else if stale() {
			return errNewerDesired
		}
		err := patchStatus(ctx, w.Client, obj, set)
		if cached {
			err = recreateIfGone(ctx, w.Client, err, fresh(), set)
		}
		if err != nil {
			firstErr = keepFirst(firstErr, err)
		}
	}
	return firstErr
}

// ownerOf calls owner, if set.
func ownerOf(owner func() *metav1.OwnerReference) *metav1.OwnerReference {
	if owner == nil {
		return nil
	}
	return owner()
}

// NodeOwner is the owner reference a node's status objects carry to its
// Node, so that the API server's garbage collector deletes them with the
// Node (a node removed from the cluster leaves none behind).
func NodeOwner(n *corev1.Node) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}

// nodeLabels are the labels that mark node's status objects (and select
// them).
func nodeLabels(node string) map[string]string {
	return map[string]string{v1beta1.LabelNodeName: v1beta1.NodeLabelValue(node)}
}

// statusMeta is the metadata of a status object of node: its label, the
// Service's labels when key is set, and owner when known.
func statusMeta(ns, name, node string, owner *metav1.OwnerReference, key model.ServiceKey) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name, Labels: nodeLabels(node)}
	if key.Name != "" {
		m.Labels[v1beta1.LabelServiceNameRef] = key.Name
		m.Labels[v1beta1.LabelServiceNSRef] = key.Namespace
	}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

// ownerMissing reports whether obj lacks owner (a known Node): an object
// written before its Node was known, or by an older version.
func ownerMissing(obj metav1.Object, owner *metav1.OwnerReference) bool {
	if owner == nil {
		return false
	}
	for _, r := range obj.GetOwnerReferences() {
		if r.UID == owner.UID {
			return false
		}
	}
	return true
}

// replaced deletes obj, which lacks its owner reference, so that it is
// created again with it (a status object's metadata cannot be patched
// through its status). It reports whether obj is gone.
func replaced(ctx context.Context, c kube.Writer, obj kube.Object, firstErr *error) bool {
	if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		*firstErr = keepFirst(*firstErr, err)
		return false
	}
	return true
}

// patchStatus writes to the status subresource of orig, as a merge
// patch, what set changes in a copy of it; orig itself (often the
// cache's) is not changed. Each node writes only its own status objects,
// so no optimistic lock: an update carrying the cache's resourceVersion
// conflicts whenever the cache has not yet seen this writer's previous
// write (BGPSessionStatus counts change with every Service).
func patchStatus[T kube.Object](ctx context.Context, c kube.Writer, orig T, set func(T)) error {
	obj := orig.DeepCopyObject().(T)
	set(obj)
	before, err := json.Marshal(orig)
	if err != nil {
		return err
	}
	after, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	patch, err := jsonpatch.CreateMergePatch(before, after)
	if err != nil {
		return fmt.Errorf("status patch of %s/%s: %w", orig.GetNamespace(), orig.GetName(), err)
	}
	return c.MergePatchStatus(ctx, obj, patch)
}

// recreateIfGone follows a status patch of an object the cache holds:
// when the patch found it gone (deleted after the cache listed it; the
// cache lags the API server, as right after a restart that followed the
// previous process's clean-up) it creates the object again and patches
// that, instead of failing until the cache catches up.
func recreateIfGone[T kube.Object](ctx context.Context, c kube.Writer, err error, fresh T, set func(T)) error {
	if !apierrors.IsNotFound(err) {
		return err
	}
	if err := c.Create(ctx, fresh); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return patchStatus(ctx, c, fresh, set)
}

func statusEqual(a, b v1beta1.ServiceL2StatusStatus) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Interfaces, b.Interfaces)
}

func keepFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
