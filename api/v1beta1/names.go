package v1beta1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Namespace is where Herald runs and where its configuration objects live.
const Namespace = "herald-system"

// LegacyConfigMapName is the ConfigMap holding configuration in MetalLB's
// v0.12 YAML format, under LegacyConfigMapKey.
const (
	LegacyConfigMapName = "herald-config"
	LegacyConfigMapKey  = "config"
)

// AnnotationPrefix is Herald's prefix for Service annotations. The MetalLB
// prefixes in AliasPrefixes are read too, so users can migrate unchanged
// manifests; Herald's own prefix wins when both are set.
const AnnotationPrefix = "herald.dev/"

// AliasPrefixes are the MetalLB annotation prefixes accepted as aliases of
// AnnotationPrefix, in the order they are consulted.
var AliasPrefixes = []string{"metallb.io/", "metallb.universe.tf/"}

// Service annotation suffixes, to be joined with a prefix.
const (
	// AnnotationAddressPool names the pool a Service's IPs must come from.
	AnnotationAddressPool = "address-pool"
	// AnnotationLoadBalancerIPs lists the IPs a Service asks for (comma
	// separated, at most one per family).
	AnnotationLoadBalancerIPs = "loadBalancerIPs"
	// AnnotationAllowSharedIP is the sharing key: Services with the same key
	// may share an IP when their ports do not clash.
	AnnotationAllowSharedIP = "allow-shared-ip"
	// AnnotationAllocatedFromPool is written by the controller: the pool the
	// Service's IPs came from.
	AnnotationAllocatedFromPool = "ip-allocated-from-pool"
)

// Annotation returns the full Herald annotation name for a suffix.
func Annotation(suffix string) string { return AnnotationPrefix + suffix }

// LookupAnnotation finds suffix under Herald's prefix or one of its aliases
// and returns the value and the full key it was found under.
func LookupAnnotation(annotations map[string]string, suffix string) (value, key string, ok bool) {
	if v, ok := annotations[AnnotationPrefix+suffix]; ok {
		return v, AnnotationPrefix + suffix, true
	}
	for _, p := range AliasPrefixes {
		if v, ok := annotations[p+suffix]; ok {
			return v, p + suffix, true
		}
	}
	return "", "", false
}

// Annotations on configuration objects that Herald made itself from the
// legacy ConfigMap (they exist only in memory, and in migration output
// without these annotations).
const (
	// AnnotationSource says where an object came from; SourceConfigMap
	// marks objects converted from the legacy ConfigMap, which have no
	// status to write.
	AnnotationSource = "herald.dev/source"
	SourceConfigMap  = "configmap"
	// AnnotationConfigMapPath is the path in the ConfigMap data the object
	// was converted from, such as "address-pools[2]", so errors can point
	// at what the user wrote.
	AnnotationConfigMapPath = "herald.dev/configmap-path"
)

// Well-known labels and names from Kubernetes that decide node eligibility.
const (
	LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"
	// TaintToBeDeleted is the taint the cluster autoscaler puts on a node
	// it is about to remove (kube-proxy's health check fails for such a
	// node, so cloud load balancers stop sending to it).
	TaintToBeDeleted    = "ToBeDeletedByClusterAutoscaler"
	LabelServiceName    = "kubernetes.io/service-name"
	LabelNodeName       = "herald.dev/node"
	LabelServiceNameRef = "herald.dev/service-name"
	LabelServiceNSRef   = "herald.dev/service-namespace"
)

// NodeLabelValue is the value of LabelNodeName for a node: its name, or,
// for a name longer than a label value may be (63 characters; node names
// go up to 253), its first 52 characters and a hash of the whole name.
func NodeLabelValue(node string) string {
	if len(node) <= 63 {
		return node
	}
	sum := sha256.Sum256([]byte(node))
	return strings.TrimRight(node[:52], ".-_") + "-" + hex.EncodeToString(sum[:5])
}

// Condition types and reasons used on configuration objects.
const (
	// ConditionValid is True when the object was accepted into the
	// configuration in force, False when it holds an error (the message
	// names the field).
	ConditionValid = "Valid"

	ReasonAccepted       = "Accepted"
	ReasonInvalid        = "InvalidConfiguration"
	ReasonBlockedByOther = "BlockedByOtherObject"
)
