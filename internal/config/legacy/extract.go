package legacy

import "sigs.k8s.io/yaml"

// ConfigFromFile returns the v0.12 configuration held in data: data itself,
// or, when data is a whole ConfigMap manifest, its data.config value.
func ConfigFromFile(data []byte) []byte {
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil || cm.Kind != "ConfigMap" {
		return data
	}
	if c, ok := cm.Data["config"]; ok {
		return []byte(c)
	}
	return data
}
