package allocation

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/k8s"
)

// The ConfigMap's errors are sent as events once, not again on every
// pass while they stay the same; a new error is sent.
func TestConfigMapErrorEventsOnce(t *testing.T) {
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: v1beta1.Namespace, Name: v1beta1.LegacyConfigMapName}}
	rec := record.NewFakeRecorder(10)
	r := &ConfigReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(cm).Build(), Recorder: rec, Namespace: v1beta1.Namespace}
	res := config.Resources{ConfigMap: &config.LegacyData{Namespace: v1beta1.Namespace, Name: v1beta1.LegacyConfigMapName}}
	e := func(msg string) []config.ObjectError {
		return []config.ObjectError{{Kind: config.KindConfigMap, Namespace: v1beta1.Namespace, Name: v1beta1.LegacyConfigMapName, Field: "peers[0]", Message: msg}}
	}
	for i, errs := range [][]config.ObjectError{e("bad"), e("bad"), e("bad"), e("worse")} {
		if err := r.report(context.Background(), res, errs); err != nil {
			t.Fatal(err)
		}
		want := i == 0 || i == 3
		select {
		case ev := <-rec.Events:
			if !want {
				t.Errorf("pass %d: event %q for an unchanged error", i, ev)
			}
		default:
			if want {
				t.Errorf("pass %d: no event", i)
			}
		}
	}
}
