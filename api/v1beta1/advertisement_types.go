package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// L2AdvertisementSpec says which pools are announced over layer 2 (ARP for
// IPv4, NDP for IPv6), from which nodes and on which interfaces.
type L2AdvertisementSpec struct {
	// IPAddressPools names the pools announced. With ipAddressPoolSelectors
	// empty too, every pool is announced.
	// +optional
	// +listType=set
	IPAddressPools []string `json:"ipAddressPools,omitempty"`
	// IPAddressPoolSelectors select pools by label.
	// +optional
	// +listType=atomic
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	// NodeSelectors limit the nodes that may answer for the IPs. Empty means
	// every node.
	// +optional
	// +listType=atomic
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	// Interfaces the speaker answers on. Empty means every suitable
	// interface: up, broadcast-capable, holding an address, not enslaved to
	// a bond or bridge.
	// +optional
	// +kubebuilder:validation:items:MaxLength=15
	// +listType=set
	Interfaces []string `json:"interfaces,omitempty"`
}

// L2Advertisement announces pools over layer 2.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=l2adv
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   L2AdvertisementSpec `json:"spec,omitempty"`
	Status ConfigStatus        `json:"status,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisement.
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2Advertisement `json:"items"`
}

// BGPAdvertisementSpec says which pools are announced over BGP, how, to
// which peers and from which nodes.
type BGPAdvertisementSpec struct {
	// IPAddressPools names the pools announced. With ipAddressPoolSelectors
	// empty too, every pool is announced.
	// +optional
	// +listType=set
	IPAddressPools []string `json:"ipAddressPools,omitempty"`
	// IPAddressPoolSelectors select pools by label.
	// +optional
	// +listType=atomic
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	// AggregationLength is the prefix length announced for IPv4 addresses
	// (default 32: each address on its own). It may not be shorter than
	// the pool's own prefix.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default:=32
	// +optional
	AggregationLength *int32 `json:"aggregationLength,omitempty"`
	// AggregationLengthV6 is the same for IPv6 (default 128).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default:=128
	// +optional
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`
	// LocalPref is the LOCAL_PREF attribute, for iBGP peers only.
	// +optional
	LocalPref uint32 `json:"localPref,omitempty"`
	// Communities attached to the routes: "65000:100", large communities
	// "large:1:2:3", or the name of an alias from a Community object.
	// +optional
	// +listType=set
	Communities []string `json:"communities,omitempty"`
	// Peers limits the BGPPeers (by name) the routes go to. Empty means all.
	// +optional
	// +listType=set
	Peers []string `json:"peers,omitempty"`
	// NodeSelectors limit the nodes announcing. Empty means every node.
	// +optional
	// +listType=atomic
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
}

// BGPAdvertisement announces pools over BGP.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpadv
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPAdvertisementSpec `json:"spec,omitempty"`
	Status ConfigStatus         `json:"status,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisement.
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}

// ConfigStatus is the status of a configuration object that has nothing
// to report but whether it is in force.
type ConfigStatus struct {
	// Conditions: Valid tells whether the object is part of the
	// configuration in force, and if not, which field is wrong.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
