package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
)

// NewEventRecorder returns a recorder that writes core/v1 Events through
// api as component, and the function that stops it. Events about an
// object are written in the object's namespace ("default" for
// cluster-scoped objects); scheme names the kinds of objects without
// TypeMeta. Repeated events are aggregated by client-go's correlator.
//
// client-go's broadcaster runs goroutines from here on (it has no Run);
// shutdown stops them, dropping the events not yet written.
func NewEventRecorder(api *APIClient, scheme *runtime.Scheme, component string) (record.EventRecorder, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	b := record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: 256}))
	b.StartRecordingToSink(&eventSink{ctx: ctx, rc: api.clients[corev1.SchemeGroupVersion]})
	shutdown := func() {
		b.Shutdown()
		cancel()
	}
	return b.NewRecorder(scheme, corev1.EventSource{Component: component}), shutdown
}

// eventSink writes Events with the core/v1 REST client. Its errors are
// the REST client's, unwrapped: the broadcaster decides on retries by
// their type.
type eventSink struct {
	ctx context.Context
	rc  rest.Interface
}

var _ record.EventSink = (*eventSink)(nil)

// Create creates e in its namespace.
func (s *eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	if err := s.rc.Post().Namespace(e.Namespace).Resource("events").Body(e).Do(s.ctx).Into(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Update replaces e.
func (s *eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	if err := s.rc.Put().Namespace(e.Namespace).Resource("events").Name(e.Name).Body(e).Do(s.ctx).Into(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Patch applies a strategic merge patch (the correlator's count and
// timestamp update) to old.
func (s *eventSink) Patch(old *corev1.Event, data []byte) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.rc.Patch(types.StrategicMergePatchType).Namespace(old.Namespace).Resource("events").Name(old.Name).
		Body(data).Do(s.ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return out, nil
}
