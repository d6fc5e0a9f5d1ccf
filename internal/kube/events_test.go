package kube_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/internal/kube"
)

func TestEventRecorder(t *testing.T) {
	f := newFixture(t)
	ns := f.namespace(t)
	svc := newService(ns, "web", nil)
	node := newNode(uniqueName("node"), nil)
	l2 := newL2Status(ns, "web-status", "node-1")
	f.create(t, svc, node, l2)

	recorder := kube.NewEvents(f.api, "kube-test", "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- recorder.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	for _, tc := range []struct {
		name string
		obj  runtime.Object
		meta metav1.Object
		// ns is where the Event must be: the object's namespace, or
		// "default" for cluster-scoped objects.
		ns, kind, apiVersion string
		times                int32
	}{
		{"Service twice", svc, svc, ns, "Service", "v1", 2},
		{"Node", node, node, metav1.NamespaceDefault, "Node", "v1", 1},
		{"Herald kind", l2, l2, ns, "ServiceL2Status", "herald.dev/v1beta1", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason := fmt.Sprintf("Test%d", nameSeq.Add(1))
			for range tc.times {
				// The second identical event is aggregated: the
				// first one's count is patched.
				recorder.Eventf(tc.obj, corev1.EventTypeWarning, reason, "about %s", tc.meta.GetName())
			}
			eventually(t, "the event", func() error {
				var l corev1.EventList
				if err := f.api.List(t.Context(), &l, kube.InNamespace(tc.ns)); err != nil {
					return err
				}
				for _, e := range l.Items {
					if e.Reason != reason {
						continue
					}
					io := e.InvolvedObject
					switch {
					case io.Name != tc.meta.GetName() || io.UID != tc.meta.GetUID() || io.Kind != tc.kind || io.APIVersion != tc.apiVersion:
						return fmt.Errorf("involved object %+v", io)
					case e.Type != corev1.EventTypeWarning || e.Message != "about "+tc.meta.GetName():
						return fmt.Errorf("type %q, message %q", e.Type, e.Message)
					case e.Source.Component != "kube-test" || e.ReportingController != "kube-test":
						return fmt.Errorf("source %+v, reporting controller %q", e.Source, e.ReportingController)
					case e.Count != tc.times:
						return fmt.Errorf("count %d, want %d", e.Count, tc.times)
					}
					return nil
				}
				return fmt.Errorf("no event with reason %s among %d in %s", reason, len(l.Items), tc.ns)
			})
		})
	}
}
