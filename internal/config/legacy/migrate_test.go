package legacy_test

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/config/legacy"
	"github.com/herald-lb/herald/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const namespace = "herald-system"

// Each testdata/<name>.configmap.yaml is a MetalLB v0.12 configuration;
// testdata/<name>.crds.golden.yaml is what MigrationYAML makes of it.
func inputs(t *testing.T) []string {
	t.Helper()
	in, err := filepath.Glob("testdata/*.configmap.yaml")
	if err != nil || len(in) == 0 {
		t.Fatalf("no testdata inputs: %v", err)
	}
	return in
}

func TestMigrationYAMLGolden(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := legacy.MigrationYAML(data, namespace)
			if err != nil {
				t.Fatalf("MigrationYAML: %v", err)
			}
			again, _ := legacy.MigrationYAML(data, namespace)
			if !bytes.Equal(got, again) {
				t.Error("MigrationYAML is not deterministic")
			}
			golden := strings.TrimSuffix(in, ".configmap.yaml") + ".crds.golden.yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("MigrationYAML differs from %s (-want +got):\n%s", golden, diff)
			}
			for _, banned := range []string{"status", "herald.dev/source", "herald.dev/configmap-path", "null", "{}", "[]", `""`} {
				if strings.Contains(string(got), banned) {
					t.Errorf("output contains %q", banned)
				}
			}
		})
	}
}

// TestMigrationYAMLRoundTrip checks that the migrated objects build the
// same model as the ConfigMap they came from.
func TestMigrationYAMLRoundTrip(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			fromCM, err := config.Build(config.Resources{ConfigMap: &config.LegacyData{Data: string(data)}}, config.Options{})
			if err != nil {
				t.Fatalf("Build from ConfigMap: %v", err)
			}
			out, err := legacy.MigrationYAML(data, namespace)
			if err != nil {
				t.Fatalf("MigrationYAML: %v", err)
			}
			res := decodeDocuments(t, out)
			fromCRDs, err := config.Build(res, config.Options{})
			if err != nil {
				t.Fatalf("Build from migrated objects: %v", err)
			}
			opts := cmp.Options{
				cmp.Comparer(func(a, b model.Selector) bool { return a.String() == b.String() }),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
				cmpopts.EquateEmpty(),
				cmpopts.IgnoreTypes(model.Source(0)),
			}
			if diff := cmp.Diff(fromCM, fromCRDs, opts); diff != "" {
				t.Errorf("models differ (-ConfigMap +CRDs):\n%s", diff)
			}
		})
	}
}

// decodeDocuments reads a multi-document stream strictly into typed
// objects.
func decodeDocuments(t *testing.T, stream []byte) config.Resources {
	t.Helper()
	var res config.Resources
	for i, doc := range strings.Split(string(stream), "\n---\n") {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if tm.APIVersion != v1beta1.GroupVersion.String() {
			t.Fatalf("document %d: apiVersion %q", i, tm.APIVersion)
		}
		var err error
		switch tm.Kind {
		case "IPAddressPool":
			res.Pools = append(res.Pools, v1beta1.IPAddressPool{})
			err = yaml.UnmarshalStrict([]byte(doc), &res.Pools[len(res.Pools)-1])
		case "L2Advertisement":
			res.L2Advs = append(res.L2Advs, v1beta1.L2Advertisement{})
			err = yaml.UnmarshalStrict([]byte(doc), &res.L2Advs[len(res.L2Advs)-1])
		case "BGPAdvertisement":
			res.BGPAdvs = append(res.BGPAdvs, v1beta1.BGPAdvertisement{})
			err = yaml.UnmarshalStrict([]byte(doc), &res.BGPAdvs[len(res.BGPAdvs)-1])
		case "BGPPeer":
			res.Peers = append(res.Peers, v1beta1.BGPPeer{})
			err = yaml.UnmarshalStrict([]byte(doc), &res.Peers[len(res.Peers)-1])
		case "Community":
			res.Communities = append(res.Communities, v1beta1.Community{})
			err = yaml.UnmarshalStrict([]byte(doc), &res.Communities[len(res.Communities)-1])
		case "BFDProfile":
			res.BFDProfiles = append(res.BFDProfiles, v1beta1.BFDProfile{})
			err = yaml.UnmarshalStrict([]byte(doc), &res.BFDProfiles[len(res.BFDProfiles)-1])
		default:
			err = fmt.Errorf("unexpected kind %q", tm.Kind)
		}
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	return res
}

func TestMigrationYAMLErrors(t *testing.T) {
	_, err := legacy.MigrationYAML([]byte("address-pools:\n- name: a\n  protocol: l3\n"), namespace)
	if err == nil || err.Error() != `address-pools[0].protocol: "l3" is not layer2 or bgp` {
		t.Errorf("MigrationYAML error = %v", err)
	}
}
