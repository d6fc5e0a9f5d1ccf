// Package v1beta1 holds Herald's configuration and status kinds (API group
// herald.dev, version v1beta1) and the well-known annotation and label names
// Herald reads and writes. The CRDs in manifests/ are generated from the
// kubebuilder markers here by controller-gen; deepcopy code likewise.
//
// Configuration kinds live in the herald-system namespace: IPAddressPool,
// L2Advertisement, BGPAdvertisement, BGPPeer and Community. Status kinds
// (ServiceL2Status, ServiceBGPStatus, BGPSessionStatus) are written by the
// speakers and only read by people and tools.
//
// +kubebuilder:object:generate=true
// +groupName=herald.dev
package v1beta1
