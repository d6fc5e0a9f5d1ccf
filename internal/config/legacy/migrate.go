package legacy

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
)

// MigrationYAML returns the CRD objects equivalent to a MetalLB v0.12
// configuration as a multi-document YAML stream: IPAddressPools, then
// L2Advertisements, BGPAdvertisements, BGPPeers, the Community and the
// BFDProfiles, each in
// document order, keys sorted, without status, empty fields or Herald's
// source annotations. It fails only when Parse does; values are not
// validated (config.Build does that, on the ConfigMap or on the output).
func MigrationYAML(data []byte, namespace string) ([]byte, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	objs := f.Resources(namespace)
	var docs []any
	// What others name comes first, so that `kubectl apply -f` passes
	// the webhook object by object.
	for i := range objs.Communities {
		docs = append(docs, &objs.Communities[i])
	}
	for i := range objs.BFDProfiles {
		docs = append(docs, &objs.BFDProfiles[i])
	}
	for i := range objs.Pools {
		docs = append(docs, &objs.Pools[i])
	}
	for i := range objs.Peers {
		docs = append(docs, &objs.Peers[i])
	}
	for i := range objs.L2Advs {
		docs = append(docs, &objs.L2Advs[i])
	}
	for i := range objs.BGPAdvs {
		docs = append(docs, &objs.BGPAdvs[i])
	}
	var out bytes.Buffer
	for i, d := range docs {
		y, err := cleanYAML(d)
		if err != nil {
			return nil, fmt.Errorf("encode object %d: %w", i, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}
	return out.Bytes(), nil
}

// cleanYAML encodes obj without status, Herald's source annotations and
// empty values (null, "", {} and []; zeros and false stay).
func cleanYAML(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, v1beta1.AnnotationSource)
			delete(ann, v1beta1.AnnotationConfigMapPath)
		}
	}
	prune(m)
	return yaml.Marshal(m)
}

// prune removes empty values from m, deepest first, and reports whether m
// itself ended up empty.
func prune(v any) (empty bool) {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case map[string]any:
		for k, e := range v {
			if prune(e) {
				delete(v, k)
			}
		}
		return len(v) == 0
	case []any:
		// Elements are kept even when empty: an empty selector in a list
		// means "everything".
		for _, e := range v {
			prune(e)
		}
		return len(v) == 0
	}
	return false
}
