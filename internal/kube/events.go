package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/reference"
)

// EventRecorder records events about objects (the method set of
// client-go's record.EventRecorder that Herald uses, so its fake
// recorder serves in tests).
type EventRecorder interface {
	Event(obj runtime.Object, eventtype, reason, message string)
	Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Events writes core/v1 Events in the background: recording never blocks,
// and when more than eventQueue events wait, new ones are dropped
// (Dropped counts them). An event repeated (same object, type, reason and
// message) within eventRepeatWindow raises the first one's count instead
// of writing another.
//
// It replaces client-go's record package, whose aggregation pulls in the
// strategic-merge-patch and OpenAPI packages (about 3 MB of code on every
// node) for events the speaker sends once per owner change.
type Events struct {
	rc      rest.Interface
	scheme  *runtime.Scheme
	source  corev1.EventSource
	now     func() time.Time
	queue   chan *corev1.Event
	Dropped atomic.Int64

	mu     sync.Mutex
	recent map[eventKey]*corev1.Event // written, for repeats
}

type eventKey struct {
	uid                  types.UID
	kind, ns, name       string
	typ, reason, message string
}

const (
	eventQueue        = 1024
	eventRecent       = 256
	eventRepeatWindow = 10 * time.Minute
)

var _ EventRecorder = (*Events)(nil)

// NewEvents returns a recorder that writes Events through api as
// component (from host, when set); api's scheme names the kinds of
// objects without TypeMeta. Events about an object go to its namespace
// ("default" for cluster-scoped objects). Nothing is written until Run.
func NewEvents(api *APIClient, component, host string) *Events {
	return &Events{
		rc:     api.clients[corev1.SchemeGroupVersion],
		scheme: api.scheme,
		source: corev1.EventSource{Component: component, Host: host},
		now:    time.Now,
		queue:  make(chan *corev1.Event, eventQueue),
		recent: map[eventKey]*corev1.Event{},
	}
}

// Event records an event about obj.
func (e *Events) Event(obj runtime.Object, eventtype, reason, message string) {
	ref, err := reference.GetReference(e.scheme, obj)
	if err != nil {
		e.Dropped.Add(1)
		return
	}
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	t := metav1.NewTime(e.now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      ref.Name + "." + strconv.FormatInt(t.UnixNano(), 16),
		},
		InvolvedObject:      *ref,
		Reason:              reason,
		Message:             message,
		Type:                eventtype,
		Source:              e.source,
		FirstTimestamp:      t,
		LastTimestamp:       t,
		Count:               1,
		ReportingController: e.source.Component,
		ReportingInstance:   e.source.Host,
	}
	select {
	case e.queue <- ev:
	default:
		e.Dropped.Add(1)
	}
}

// Eventf records an event with a formatted message.
func (e *Events) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	e.Event(obj, eventtype, reason, fmt.Sprintf(messageFmt, args...))
}

// Run writes the recorded events until ctx ends; those still queued then
// are dropped.
func (e *Events) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-e.queue:
			// A failed write is not retried: events are advice.
			_ = e.write(ctx, ev)
		}
	}
}

func (e *Events) write(ctx context.Context, ev *corev1.Event) error {
	io := ev.InvolvedObject
	key := eventKey{io.UID, io.Kind, io.Namespace, io.Name, ev.Type, ev.Reason, ev.Message}
	e.mu.Lock()
	prev := e.recent[key]
	e.mu.Unlock()
	if prev != nil && ev.LastTimestamp.Sub(prev.LastTimestamp.Time) < eventRepeatWindow {
		patch, err := json.Marshal(map[string]any{"count": prev.Count + 1, "lastTimestamp": ev.LastTimestamp})
		if err != nil {
			return err
		}
		out := &corev1.Event{}
		err = e.rc.Patch(types.MergePatchType).Namespace(prev.Namespace).Resource("events").Name(prev.Name).
			Body(patch).Do(ctx).Into(out)
		if err == nil {
			e.remember(key, out)
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		// Gone (events expire): write a new one.
	}
	out := &corev1.Event{}
	if err := e.rc.Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Into(out); err != nil {
		return err
	}
	e.remember(key, out)
	return nil
}

func (e *Events) remember(key eventKey, ev *corev1.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.recent) >= eventRecent {
		clear(e.recent) // a repeat of one forgotten is a new event
	}
	e.recent[key] = ev
}
