package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every kind in this package.
var GroupVersion = schema.GroupVersion{Group: "herald.dev", Version: "v1beta1"}

// AddToScheme registers every kind of this package in s. Schemes are built by
// the caller; nothing is registered globally.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&IPAddressPool{}, &IPAddressPoolList{},
		&L2Advertisement{}, &L2AdvertisementList{},
		&BGPAdvertisement{}, &BGPAdvertisementList{},
		&BGPPeer{}, &BGPPeerList{},
		&Community{}, &CommunityList{},
		&BFDProfile{}, &BFDProfileList{},
		&ServiceL2Status{}, &ServiceL2StatusList{},
		&ServiceBGPStatus{}, &ServiceBGPStatusList{},
		&BGPSessionStatus{}, &BGPSessionStatusList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
