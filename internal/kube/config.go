package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
)

// LoadResources reads every configuration object in namespace ns, and the
// legacy ConfigMap if it exists, from r (normally a cache).
func LoadResources(ctx context.Context, r Reader, ns string) (config.Resources, error) {
	var res config.Resources
	in := InNamespace(ns)

	var pools v1beta1.IPAddressPoolList
	if err := r.List(ctx, &pools, in); err != nil {
		return res, fmt.Errorf("list IPAddressPools: %w", err)
	}
	res.Pools = pools.Items
	var l2 v1beta1.L2AdvertisementList
	if err := r.List(ctx, &l2, in); err != nil {
		return res, fmt.Errorf("list L2Advertisements: %w", err)
	}
	res.L2Advs = l2.Items
	var bgp v1beta1.BGPAdvertisementList
	if err := r.List(ctx, &bgp, in); err != nil {
		return res, fmt.Errorf("list BGPAdvertisements: %w", err)
	}
	res.BGPAdvs = bgp.Items
	var peers v1beta1.BGPPeerList
	if err := r.List(ctx, &peers, in); err != nil {
		return res, fmt.Errorf("list BGPPeers: %w", err)
	}
	res.Peers = peers.Items
	var comms v1beta1.CommunityList
	if err := r.List(ctx, &comms, in); err != nil {
		return res, fmt.Errorf("list Communities: %w", err)
	}
	res.Communities = comms.Items
	var bfd v1beta1.BFDProfileList
	if err := r.List(ctx, &bfd, in); err != nil {
		return res, fmt.Errorf("list BFDProfiles: %w", err)
	}
	res.BFDProfiles = bfd.Items

	var cm corev1.ConfigMap
	err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: v1beta1.LegacyConfigMapName}, &cm)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return res, fmt.Errorf("get ConfigMap %s/%s: %w", ns, v1beta1.LegacyConfigMapName, err)
	default:
		res.ConfigMap = &config.LegacyData{Namespace: cm.Namespace, Name: cm.Name, Data: cm.Data[v1beta1.LegacyConfigMapKey]}
	}
	return res, nil
}
