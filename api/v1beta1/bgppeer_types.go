package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeerSpec is one BGP session each selected speaker opens to a router.
type BGPPeerSpec struct {
	// MyASN is the AS number the speaker uses on this session.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	MyASN uint32 `json:"myASN"`
	// PeerASN is the router's AS number; equal to myASN for iBGP. Set
	// exactly one of peerASN and dynamicASN.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	PeerASN uint32 `json:"peerASN,omitempty"`
	// DynamicASN takes the router's AS number from its OPEN message
	// instead of peerASN: "internal" accepts only myASN (iBGP), "external"
	// any other AS (eBGP). Set exactly one of peerASN and dynamicASN.
	// +optional
	DynamicASN DynamicASNMode `json:"dynamicASN,omitempty"`
	// PeerAddress is the router's IPv4 or IPv6 address.
	// +kubebuilder:validation:MinLength=1
	PeerAddress string `json:"peerAddress"`
	// PeerPort is the router's TCP port (default 179).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default:=179
	// +optional
	PeerPort uint16 `json:"peerPort,omitempty"`
	// SourceAddress is the local address the session is opened from.
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`
	// RouterID overrides the BGP router ID (default: the node's IPv4
	// address).
	// +optional
	RouterID string `json:"routerID,omitempty"`
	// HoldTime for the session (default 90s, or 3 × keepaliveTime when only
	// that is set; 0 disables; otherwise at least 3s).
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`
	// KeepaliveTime for the session (default a third of holdTime); must be
	// less than holdTime.
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`
	// ConnectTime is the time between connection attempts (default 10s).
	// +optional
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`
	// Password for TCP MD5 authentication. Prefer passwordSecret.
	// +optional
	Password string `json:"password,omitempty"`
	// PasswordSecret names a Secret in herald-system, of type
	// kubernetes.io/basic-auth, whose "password" key is the TCP MD5
	// password. Not together with password.
	// +optional
	PasswordSecret *SecretReference `json:"passwordSecret,omitempty"`
	// EBGPMultiHop allows an eBGP peer more than one hop away.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`
	// NodeSelectors limit the nodes that open this session. Empty means
	// every node.
	// +optional
	// +listType=atomic
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	// BFDProfile names a BFDProfile: the session is watched by BFD, and
	// goes down as soon as BFD does.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`
	// EnableGracefulRestart advertises the graceful-restart capability so
	// the router keeps routes while a speaker restarts.
	// +optional
	EnableGracefulRestart bool `json:"enableGracefulRestart,omitempty"`
}

// DynamicASNMode says which AS numbers a peer without peerASN may have.
// +kubebuilder:validation:Enum=internal;external
type DynamicASNMode string

// Dynamic AS modes.
const (
	// DynamicASNInternal accepts a router whose AS is myASN.
	DynamicASNInternal DynamicASNMode = "internal"
	// DynamicASNExternal accepts a router whose AS is not myASN.
	DynamicASNExternal DynamicASNMode = "external"
)

// SecretReference names a Secret in Herald's namespace.
type SecretReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace defaults to herald-system; no other is allowed.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// BGPPeer is a BGP router the speakers peer with.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgppeer
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="ASN",type=integer,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="Dynamic ASN",type=string,JSONPath=`.spec.dynamicASN`,priority=1
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=`.spec.myASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`,priority=1
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPPeerSpec  `json:"spec"`
	Status ConfigStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeer.
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

// CommunitySpec defines named BGP communities.
type CommunitySpec struct {
	// +optional
	// +listType=map
	// +listMapKey=name
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityAlias gives a BGP community value a name usable in
// BGPAdvertisement.communities.
type CommunityAlias struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value is "65000:100" or a large community "large:1:2:3".
	// +kubebuilder:validation:MinLength=1
	Value string `json:"value"`
}

// Community holds named aliases for BGP communities.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CommunitySpec `json:"spec,omitempty"`
	Status ConfigStatus  `json:"status,omitempty"`
}

// CommunityList is a list of Community.
// +kubebuilder:object:root=true
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}
