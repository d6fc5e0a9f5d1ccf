package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceL2StatusStatus says which node answers ARP/NDP for a Service.
type ServiceL2StatusStatus struct {
	// Node announcing the Service's IPs.
	Node string `json:"node,omitempty"`
	// ServiceName and ServiceNamespace identify the Service.
	ServiceName      string `json:"serviceName,omitempty"`
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// IPs announced.
	// +optional
	// +listType=atomic
	IPs []string `json:"ips,omitempty"`
	// Interfaces the node answers on.
	// +optional
	// +listType=atomic
	Interfaces []string `json:"interfaces,omitempty"`
}

// ServiceL2Status is written by the speaker that answers for a Service over
// layer 2; one object per Service and node.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=l2status
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="IPs",type=string,JSONPath=`.status.ips`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.status.interfaces`
type ServiceL2Status struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status ServiceL2StatusStatus `json:"status,omitempty"`
}

// ServiceL2StatusList is a list of ServiceL2Status.
// +kubebuilder:object:root=true
type ServiceL2StatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceL2Status `json:"items"`
}

// ServiceBGPStatusStatus says which peers a node advertises a Service to.
type ServiceBGPStatusStatus struct {
	Node             string `json:"node,omitempty"`
	ServiceName      string `json:"serviceName,omitempty"`
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// Prefixes advertised.
	// +optional
	// +listType=atomic
	Prefixes []string `json:"prefixes,omitempty"`
	// Peers (BGPPeer names) the prefixes are advertised to.
	// +optional
	// +listType=atomic
	Peers []string `json:"peers,omitempty"`
}

// ServiceBGPStatus is written by each speaker advertising a Service over
// BGP; one object per Service and node.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpstatus
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.status.peers`
type ServiceBGPStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status ServiceBGPStatusStatus `json:"status,omitempty"`
}

// ServiceBGPStatusList is a list of ServiceBGPStatus.
// +kubebuilder:object:root=true
type ServiceBGPStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceBGPStatus `json:"items"`
}

// BGPSessionState is the state of a BGP session as GoBGP reports it.
// +kubebuilder:validation:Enum=Unknown;Idle;Connect;Active;OpenSent;OpenConfirm;Established
type BGPSessionState string

// BGPSessionStatusStatus is the state of one node's session with one peer.
type BGPSessionStatusStatus struct {
	Node string `json:"node,omitempty"`
	// Peer is the BGPPeer name.
	Peer        string          `json:"peer,omitempty"`
	PeerAddress string          `json:"peerAddress,omitempty"`
	State       BGPSessionState `json:"state,omitempty"`
	// PeerASN is the AS number the router sent in its OPEN message, once
	// the session was established.
	// +optional
	PeerASN uint32 `json:"peerASN,omitempty"`
	// LastTransitionTime is when State last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// BFDState is the state of the session's BFD session (Up, Down,
	// Init, AdminDown); empty without a BFDProfile.
	// +optional
	BFDState string `json:"bfdState,omitempty"`
	// AdvertisedPrefixes counts prefixes sent to the peer.
	// +optional
	AdvertisedPrefixes int32 `json:"advertisedPrefixes,omitempty"`
	// Message holds the last error, if any.
	// +optional
	Message string `json:"message,omitempty"`
}

// BGPSessionStatus is written by a speaker for each of its BGP sessions.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpsession
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Peer",type=string,JSONPath=`.status.peer`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.peerAddress`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=`.status.peerASN`,priority=1
// +kubebuilder:printcolumn:name="BFD",type=string,JSONPath=`.status.bfdState`
// +kubebuilder:printcolumn:name="Prefixes",type=integer,JSONPath=`.status.advertisedPrefixes`
type BGPSessionStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status BGPSessionStatusStatus `json:"status,omitempty"`
}

// BGPSessionStatusList is a list of BGPSessionStatus.
// +kubebuilder:object:root=true
type BGPSessionStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPSessionStatus `json:"items"`
}
