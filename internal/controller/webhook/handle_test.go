package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/herald-lb/herald/api/v1beta1"
)

// failingReader stands for an API server that cannot be read.
type failingReader struct{}

func (failingReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("etcd timeout")
}

func (failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("etcd timeout")
}

// A change the webhook cannot check is let through with a warning: an
// error answer would refuse it, whatever the failure policy.
func TestHandleUncheckedAllows(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	v := &Validator{Reader: failingReader{}, Namespace: ns, Decoder: admission.NewDecoder(scheme), Log: logr.Discard()}
	raw, err := json.Marshal(&v1beta1.IPAddressPool{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "IPAddressPool"},
		ObjectMeta: om("a"),
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/24"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Delete} {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: op,
			Kind:      metav1.GroupVersionKind{Group: v1beta1.GroupVersion.Group, Version: v1beta1.GroupVersion.Version, Kind: "IPAddressPool"},
			Namespace: ns, Name: "a",
		}}
		if op == admissionv1.Delete {
			req.OldObject.Raw = raw
		} else {
			req.Object.Raw = raw
		}
		resp := v.Handle(context.Background(), req)
		if !resp.Allowed {
			t.Errorf("%s refused when the configuration cannot be read: %+v", op, resp.Result)
		}
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "etcd timeout") {
			t.Errorf("%s warnings %q, want one naming the error", op, resp.Warnings)
		}
	}
}
