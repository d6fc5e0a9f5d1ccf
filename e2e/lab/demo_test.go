package lab

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
)

// TestDemoManifestsValid: the demo's manifests, as `lab demo` writes them,
// decode strictly into Herald's kinds and make a valid configuration
// together (a typo there would only show when a user applies them).
func TestDemoManifestsValid(t *testing.T) {
	var res config.Resources
	kinds := map[string]int{}
	for _, name := range []string{"demo.yaml", "demo-bgp.yaml"} {
		b, err := renderManifest(name, NetnsPlan)
		if err != nil {
			t.Fatalf("render %s: %v", name, err)
		}
		for i, doc := range strings.Split(string(b), "\n---\n") {
			var tm struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", name, i, err)
			}
			kinds[tm.Kind]++
			var obj any
			switch tm.Kind {
			case "IPAddressPool":
				res.Pools = append(res.Pools, v1beta1.IPAddressPool{})
				obj = &res.Pools[len(res.Pools)-1]
			case "L2Advertisement":
				res.L2Advs = append(res.L2Advs, v1beta1.L2Advertisement{})
				obj = &res.L2Advs[len(res.L2Advs)-1]
			case "BGPAdvertisement":
				res.BGPAdvs = append(res.BGPAdvs, v1beta1.BGPAdvertisement{})
				obj = &res.BGPAdvs[len(res.BGPAdvs)-1]
			case "BGPPeer":
				res.Peers = append(res.Peers, v1beta1.BGPPeer{})
				obj = &res.Peers[len(res.Peers)-1]
			case "BFDProfile":
				res.BFDProfiles = append(res.BFDProfiles, v1beta1.BFDProfile{})
				obj = &res.BFDProfiles[len(res.BFDProfiles)-1]
			default:
				continue // Services and the like
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", name, i, tm.Kind, err)
			}
		}
	}
	if _, err := config.Build(res, config.Options{}); err != nil {
		t.Fatalf("the demo's configuration is not valid: %v", err)
	}
	for _, k := range []string{"IPAddressPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement", "BFDProfile", "Service"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the demo manifests (kinds %v)", k, kinds)
		}
	}
}
