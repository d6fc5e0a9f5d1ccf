package webhook

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/k8s"
)

// Path is where the webhook is served; the markers below generate the
// ValidatingWebhookConfiguration in manifests/webhook.
const Path = "/validate-herald-dev-v1beta1"

// +kubebuilder:webhookconfiguration:mutating=false,name=herald-validating-webhook
// +kubebuilder:webhook:path=/validate-herald-dev-v1beta1,mutating=false,failurePolicy=ignore,sideEffects=None,matchPolicy=Equivalent,timeoutSeconds=10,admissionReviewVersions=v1,groups=herald.dev,versions=v1beta1,resources=ipaddresspools;l2advertisements;bgpadvertisements;bgppeers;communities;bfdprofiles,verbs=create;update;delete,name=config.herald.dev,serviceName=herald-webhook,serviceNamespace=herald-system,servicePort=443

// Validator is the admission handler.
type Validator struct {
	// Reader reads the configuration live (the manager's API reader).
	Reader    client.Reader
	Namespace string
	Decoder   admission.Decoder
	Log       logr.Logger
}

var _ admission.Handler = (*Validator)(nil)

// New returns the webhook to register at Path.
func New(v *Validator) *admission.Webhook {
	return &admission.Webhook{Handler: v, RecoverPanic: ptr.To(true)}
}

// newObject returns an empty object of a configuration kind.
func newObject(kind string) (client.Object, bool) {
	switch kind {
	case "IPAddressPool":
		return &v1beta1.IPAddressPool{}, true
	case "L2Advertisement":
		return &v1beta1.L2Advertisement{}, true
	case "BGPAdvertisement":
		return &v1beta1.BGPAdvertisement{}, true
	case "BGPPeer":
		return &v1beta1.BGPPeer{}, true
	case "Community":
		return &v1beta1.Community{}, true
	case "BFDProfile":
		return &v1beta1.BFDProfile{}, true
	}
	return nil, false
}

// Handle implements admission.Handler.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	kind := req.Kind.Kind
	if req.Kind.Group != v1beta1.GroupVersion.Group {
		return admission.Allowed("not a Herald object")
	}
	obj, ok := newObject(kind)
	if !ok {
		return admission.Allowed("not a configuration kind")
	}
	ch := Change{Kind: kind}
	raw := req.Object
	switch req.Operation {
	case admissionv1.Create:
		ch.Op = Create
	case admissionv1.Update:
		ch.Op = Update
	case admissionv1.Delete:
		ch.Op = Delete
		raw = req.OldObject
	default:
		return admission.Allowed("")
	}
	if err := v.Decoder.DecodeRaw(raw, obj); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode %s: %w", kind, err))
	}
	ch.Object = obj
	if ch.Op == Delete && obj.GetNamespace() != v.Namespace {
		return admission.Allowed("not part of the configuration")
	}
	if ch.Op == Update {
		old, _ := newObject(kind)
		if err := v.Decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode old %s: %w", kind, err))
		}
		if equality.Semantic.DeepEqual(specOf(old), specOf(obj)) && equality.Semantic.DeepEqual(old.GetLabels(), obj.GetLabels()) {
			return admission.Allowed("spec and labels unchanged")
		}
	}

	// When the change cannot be checked it is let through, with a
	// warning: the controller still validates. (An error answer would be
	// a refusal: the API server applies the failure policy only when the
	// call itself fails.)
	res, err := k8s.LoadResources(ctx, v.Reader, v.Namespace)
	if err != nil {
		return uncheckedResponse(fmt.Errorf("read the configuration: %w", err))
	}
	verdict, err := Review(res, config.Options{Namespace: v.Namespace}, ch)
	if err != nil {
		return uncheckedResponse(err)
	}
	if !verdict.Allowed() {
		v.Log.V(1).Info("rejected a configuration change", "kind", kind, "name", obj.GetName(), "errors", len(verdict.Introduced))
		return denied(verdict.Message())
	}
	return admission.Allowed("").WithWarnings(verdict.Warnings()...)
}

// uncheckedResponse lets a change through that could not be checked.
func uncheckedResponse(err error) admission.Response {
	return admission.Allowed("not checked").WithWarnings(
		fmt.Sprintf("Herald's webhook could not check this change (%v); the controller will, and keeps the last good configuration if it is wrong", err))
}

// denied is a rejection the API server passes on as 422 Invalid, like its
// own schema validation, with the message naming object and field.
func denied(msg string) admission.Response {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusUnprocessableEntity,
			Reason:  metav1.StatusReasonInvalid,
			Message: msg,
		},
	}}
}

// specOf returns the part of a configuration object the validation reads,
// besides labels: its spec (the whole object for any other kind).
func specOf(obj runtime.Object) any {
	if spec := config.SpecOf(obj); spec != nil {
		return spec
	}
	return obj
}
