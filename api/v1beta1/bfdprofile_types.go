package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDProfileSpec holds the BFD settings of the BGP peers that name the
// profile (BGPPeer spec.bfdProfile). Intervals are in milliseconds, as in
// MetalLB's BFDProfile.
type BFDProfileSpec struct {
	// ReceiveInterval is the shortest interval between BFD packets this
	// node asks the router for (default 300).
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +optional
	ReceiveInterval *uint32 `json:"receiveInterval,omitempty"`
	// TransmitInterval is the shortest interval between BFD packets this
	// node wants to send (default 300). The interval used is the longer
	// of this and the router's receive interval.
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +optional
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`
	// DetectMultiplier is how many intervals without a packet take the
	// session down (default 3).
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	// +optional
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`
	// EchoInterval is accepted for MetalLB compatibility; it has no
	// effect (echo mode is not used).
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +optional
	EchoInterval *uint32 `json:"echoInterval,omitempty"`
	// EchoMode is accepted for MetalLB compatibility and not used: the
	// control packets alone detect a failure.
	// +optional
	EchoMode *bool `json:"echoMode,omitempty"`
	// PassiveMode makes the node wait for the router's first BFD packet
	// instead of sending first.
	// +optional
	PassiveMode *bool `json:"passiveMode,omitempty"`
	// MinimumTTL is the lowest TTL accepted on BFD packets of multi-hop
	// sessions (ebgpMultiHop peers; default 254). Single-hop sessions
	// accept only 255.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=254
	// +optional
	MinimumTTL *uint32 `json:"minimumTtl,omitempty"`
}

// BFDProfile is a set of BFD settings for BGP sessions: with BFD the
// router and the node notice a dead path within a fraction of a second,
// instead of after the BGP hold time.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Passive",type=boolean,JSONPath=`.spec.passiveMode`
// +kubebuilder:printcolumn:name="Transmit",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Receive",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BFDProfileSpec `json:"spec,omitempty"`
	Status ConfigStatus   `json:"status,omitempty"`
}

// BFDProfileList is a list of BFDProfile.
// +kubebuilder:object:root=true
type BFDProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDProfile `json:"items"`
}
