package legacy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/config/legacy"
)

func FuzzParseLegacy(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.configmap.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"peers: [",
		"address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24, fd00::/120]\n  bgp-advertisements:\n  - aggregation-length: 0\n    localpref: 1\n    communities: [x, 1:1, large:1:2:3]\n",
		"peers:\n- peer-address: fe80::1%eth0\n  peer-asn: 1\n  my-asn: 1\n  hold-time: 0s\n  keepalive-time: 1s\n  node-selectors:\n  - match-expressions:\n    - {key: k, operator: In}\n",
		"bgp-communities:\n  a: 1:1\n  b: \"large:1:1:1\"\n  '': 1:2\n",
		"address-pools:\n- name: a\n  protocol: layer2\n  addresses: ['::ffff:10.0.0.0/120', 10.0.0.5-10.0.0.1]\n",
		"bfd-profiles:\n- name: x\n  echo-mode: true\n",
		"a: &a [*a, *a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := legacy.Parse(data)
		if err != nil {
			if file != nil {
				t.Fatal("Parse returned a File with an error")
			}
			return
		}
		objs := file.Resources("herald-system")
		cfg, err := config.Build(config.Resources{
			Pools: objs.Pools, L2Advs: objs.L2Advs, BGPAdvs: objs.BGPAdvs, Peers: objs.Peers, Communities: objs.Communities,
			BFDProfiles: objs.BFDProfiles,
		}, config.Options{})
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Build returned model %v and error %v", cfg, err)
		}
		cfg2, err2 := config.Build(config.Resources{ConfigMap: &config.LegacyData{Data: string(data)}}, config.Options{})
		if (cfg2 == nil) != (cfg == nil) || (err2 == nil) != (err == nil) {
			t.Fatalf("Build of the ConfigMap and of its objects disagree: %v / %v", err2, err)
		}
		if _, err := legacy.MigrationYAML(data, "herald-system"); err != nil {
			t.Fatalf("MigrationYAML failed on data Parse accepted: %v", err)
		}
	})
}
