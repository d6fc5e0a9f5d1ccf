// Package legacy reads MetalLB v0.12's ConfigMap format ("config" key of
// the herald-config ConfigMap) and turns it into Herald's configuration
// objects, so one validator (package config) checks both sources.
//
// Parse checks the shape of the document and what only this format has:
// every key is known (names are case-sensitive), every value has the right
// type, no key is repeated, pools have unique names that are valid object
// names, and protocols are "layer2" or "bgp".
// Values (addresses, ASNs, communities, durations' ranges) are checked by
// config.Build on the converted objects; ConfigMapPath maps the field paths
// of its errors back to paths in the ConfigMap.
//
// Conversion (File.Resources) is deterministic and stable: the same document
// always gives the same objects with the same names.
//
//   - each address pool becomes an IPAddressPool of the same name;
//   - a layer2 pool gets an L2Advertisement "<pool>-l2" naming the pool;
//   - a bgp pool gets a BGPAdvertisement "<pool>-bgp-<i>" per entry of its
//     bgp-advertisements, or one "<pool>-bgp" with defaults when it lists
//     none;
//   - peer i becomes a BGPPeer "peer-<i>-<address>", the address lowercased
//     with every character other than a-z and 0-9 replaced by '-' and
//     trailing dashes dropped ("peer-0-10-0-0-1", "peer-1-fd00--1"). The
//     name changes when peers are reordered;
//   - bgp-communities become one Community "configmap-communities", aliases
//     sorted by name;
//   - each bfd-profiles entry becomes a BFDProfile of the same name.
//
// Converted objects carry the annotations v1beta1.AnnotationSource
// ("configmap") and v1beta1.AnnotationConfigMapPath. MigrationYAML writes
// the same objects as CRD YAML without them.
//
// The package is pure: no I/O, no logging, no goroutines.
package legacy
