package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPoolSpec is a set of addresses Herald may hand to Services.
type IPAddressPoolSpec struct {
	// Addresses are CIDRs ("192.168.10.0/24", "fd00:10::/64") or inclusive
	// ranges ("192.168.10.10-192.168.10.20"), IPv4 and IPv6 mixed freely.
	// Pools may not overlap.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:items:MinLength=1
	// +listType=atomic
	Addresses []string `json:"addresses"`

	// AutoAssign lets the controller pick addresses from this pool for
	// Services that did not ask for it. When false, the pool only serves
	// Services that name it (address-pool annotation) or ask for one of its
	// IPs.
	// +kubebuilder:default:=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255, which some
	// old consumer equipment drops.
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// ServiceAllocation restricts the pool to some Services and orders it
	// among pools. Without it the pool serves every Service, after the
	// pools whose serviceAllocation matches the Service.
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation scopes a pool to namespaces and Services and sets its
// priority.
type ServiceAllocation struct {
	// Priority orders matching pools: a lower number is tried first; 0 (or
	// unset) is tried after every pool with a priority.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// Namespaces the pool serves. Together with namespaceSelectors: a
	// Service's namespace must be listed here or match a selector.
	// +optional
	// +listType=set
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelectors select the namespaces the pool serves.
	// +optional
	// +listType=atomic
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors select the Services the pool serves (any one must
	// match).
	// +optional
	// +listType=atomic
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus reports how much of the pool is in use. Counts of
// available IPv6 addresses saturate at the largest int64.
type IPAddressPoolStatus struct {
	// +optional
	AssignedIPv4 int64 `json:"assignedIPv4"`
	// +optional
	AvailableIPv4 int64 `json:"availableIPv4"`
	// +optional
	AssignedIPv6 int64 `json:"assignedIPv6"`
	// +optional
	AvailableIPv6 int64 `json:"availableIPv6"`

	// Conditions: Valid tells whether the pool is part of the configuration
	// in force, and if not, which field is wrong.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPAddressPool is a set of addresses Herald assigns to LoadBalancer
// Services.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ippool;pool
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Avoid Buggy IPs",type=boolean,JSONPath=`.spec.avoidBuggyIPs`
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="IPv4 Used",type=integer,JSONPath=`.status.assignedIPv4`
// +kubebuilder:printcolumn:name="IPv4 Free",type=integer,JSONPath=`.status.availableIPv4`
// +kubebuilder:printcolumn:name="IPv6 Used",type=integer,JSONPath=`.status.assignedIPv6`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPAddressPoolSpec   `json:"spec"`
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPool.
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}
