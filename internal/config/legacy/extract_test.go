package legacy

import "testing"

func TestConfigFromFile(t *testing.T) {
	raw := "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10.0.0.0/24]\n"
	whole := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n  namespace: metallb-system\ndata:\n  config: |\n    address-pools:\n    - name: a\n      protocol: layer2\n      addresses: [10.0.0.0/24]\n"
	tests := []struct{ name, in, want string }{
		{"raw config", raw, raw},
		{"whole ConfigMap", whole, raw},
		{"not yaml", "\t::", "\t::"},
		{"ConfigMap without config key", "kind: ConfigMap\ndata:\n  other: x\n", "kind: ConfigMap\ndata:\n  other: x\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(ConfigFromFile([]byte(tc.in))); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
