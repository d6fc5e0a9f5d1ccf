package legacy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *File
	}{
		{"empty", "", &File{}},
		{"comment only", "# nothing yet\n", &File{}},
		{"nulls", "peers:\naddress-pools: ~\n", &File{}},
		{"every key", `
peers:
- peer-address: 10.0.0.1
  peer-asn: 64501
  my-asn: 64500
  peer-port: 1179
  hold-time: 1m30s
  keepalive-time: 30s
  router-id: 10.0.0.100
  source-address: 10.0.0.5
  password: 12345678
  ebgp-multihop: yes
  bfd-profile: fast
  node-selectors:
  - match-labels: {rack: a}
    match-expressions:
    - {key: k, operator: In, values: [v1, v2]}
bgp-communities:
  no-advertise: 65535:65282
bfd-profiles:
- name: fast
  receive-interval: 100
  transmit-interval: 100
  detect-multiplier: 3
  echo-interval: 50
  echo-mode: true
  passive-mode: false
  minimum-ttl: 254
address-pools:
- name: gold
  protocol: bgp
  addresses: [10.1.0.0/24]
  auto-assign: false
  avoid-buggy-ips: true
  bgp-advertisements:
  - aggregation-length: 24
    aggregation-length-v6: 64
    localpref: 100
    communities: [no-advertise, "64500:1"]
`, &File{
			Peers: []Peer{{
				PeerAddress: "10.0.0.1", PeerASN: 64501, MyASN: 64500, PeerPort: 1179,
				HoldTime: &metav1.Duration{Duration: 90 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 30 * time.Second},
				RouterID: "10.0.0.100", SourceAddress: "10.0.0.5", Password: "12345678", EBGPMultiHop: true, BFDProfile: "fast",
				NodeSelectors: []NodeSelector{{
					MatchLabels:      map[string]string{"rack": "a"},
					MatchExpressions: []SelectorRequirement{{Key: "k", Operator: "In", Values: []string{"v1", "v2"}}},
				}},
			}},
			BGPCommunities: map[string]string{"no-advertise": "65535:65282"},
			BFDProfiles: []BFDProfile{{
				Name: "fast", ReceiveInterval: ptr[uint32](100), TransmitInterval: ptr[uint32](100), DetectMultiplier: ptr[uint32](3),
				EchoInterval: ptr[uint32](50), EchoMode: true, MinimumTTL: ptr[uint32](254),
			}},
			Pools: []Pool{{
				Name: "gold", Protocol: "bgp", Addresses: []string{"10.1.0.0/24"}, AutoAssign: ptr(false), AvoidBuggyIPs: true,
				BGPAdvertisements: []BGPAdvertisement{{
					AggregationLength: ptr[int32](24), AggregationLengthV6: ptr[int32](64), LocalPref: ptr[uint32](100),
					Communities: []string{"no-advertise", "64500:1"},
				}},
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"syntax", "peers: [", []string{"invalid YAML: yaml: line 1: did not find expected node content"}},
		{"not a mapping", "- a\n", []string{"want a mapping, got a list"}},
		{"unknown top-level key", "pools: []\nbfd-profiles: []\n", []string{`unknown field "pools"`}},
		{"unknown keys, case-sensitive", "address-pools:\n- name: a\n  protocol: layer2\n  Addresses: [x]\n  auto-asign: true\n", []string{
			`address-pools[0]: unknown field "Addresses"`,
			`address-pools[0]: unknown field "auto-asign"`}},
		{"unknown nested key", "peers:\n- node-selectors:\n  - match-expressions:\n    - {key: k, op: In}\n", []string{
			`peers[0].node-selectors[0].match-expressions[0]: unknown field "op"`}},
		{"wrong types", `
peers:
- peer-asn: -1
  my-asn: 4294967296
  peer-port: 65536
  hold-time: 90
  keepalive-time: soon
  ebgp-multihop: "true"
  node-selectors: {rack: a}
bgp-communities: [a]
address-pools:
- name: [a]
  protocol: bgp
  addresses: 10.0.0.0/24
  bgp-advertisements:
  - aggregation-length: 1.5
    localpref: 4294967296
    communities: [{a: b}]
`, []string{
			`address-pools[0].addresses: want a list, got "10.0.0.0/24"`,
			`address-pools[0].bgp-advertisements[0].aggregation-length: want an integer from -2147483648 to 2147483647, got 1.5`,
			`address-pools[0].bgp-advertisements[0].communities[0]: want a string, got a mapping`,
			`address-pools[0].bgp-advertisements[0].localpref: want an integer from 0 to 4294967295, got 4294967296`,
			`address-pools[0].name: want a string, got a list`,
			`bgp-communities: want a mapping, got a list`,
			`peers[0].ebgp-multihop: want true or false, got "true"`,
			`peers[0].hold-time: want a duration such as "90s", got 90`,
			`peers[0].keepalive-time: "soon" is not a duration such as "90s"`,
			`peers[0].my-asn: want an integer from 0 to 4294967295, got 4294967296`,
			`peers[0].node-selectors: want a list, got a mapping`,
			`peers[0].peer-asn: want an integer from 0 to 4294967295, got -1`,
			`peers[0].peer-port: want an integer from 0 to 65535, got 65536`,
			`address-pools[0].name: required`}},
		{"pool rules", `
address-pools:
- protocol: layer2
- name: Bad_Name
  protocol: bgp
- name: dup
  protocol: l3
- name: dup
- name: l2
  protocol: layer2
  bgp-advertisements: [{localpref: 1}]
bfd-profiles:
- echo-mode: true
`, []string{
			`address-pools[0].name: required`,
			`address-pools[1].name: "Bad_Name" is not a valid Kubernetes object name (lowercase letters, digits, '-' and '.'); Herald makes an IPAddressPool of each pool, so rename it and the Services' address-pool annotations`,
			`address-pools[2].protocol: "l3" is not layer2 or bgp`,
			`address-pools[3].name: "dup" is already the name of address-pools[2]`,
			`address-pools[3].protocol: required (layer2 or bgp)`,
			`address-pools[4].bgp-advertisements: only allowed with protocol bgp`,
			`bfd-profiles[0].name: required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", f)
			}
			if f != nil {
				t.Errorf("Parse returned a File with an error")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// Scalars meant as strings are read as written, as MetalLB read them:
// YAML would make numbers or booleans of these (0123 is 83 to it), and a
// TCP MD5 password changed that way never matches the router's.
func TestParseScalarsAsWritten(t *testing.T) {
	f, err := Parse([]byte(`
peers:
- {peer-address: 10.0.0.1, peer-asn: 1, my-asn: 2, password: 0123}
- {peer-address: 10.0.0.2, peer-asn: 1, my-asn: 2, password: yes}
- {peer-address: 10.0.0.3, peer-asn: 1, my-asn: 2, password: 1e3}
- {peer-address: 10.0.0.4, peer-asn: 1, my-asn: 2, password: 0x1F}
- peer-address: 10.0.0.5
  peer-asn: 1
  my-asn: 2
  password: &p 1_000
- {peer-address: 10.0.0.6, peer-asn: 1, my-asn: 2, password: *p}
- {peer-address: 10.0.0.7, peer-asn: 1, my-asn: 2, password: "0123"}
address-pools:
- name: 007
  protocol: layer2
  addresses: [10.0.0.0/24]
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range f.Peers {
		got = append(got, p.Password)
	}
	if diff := cmp.Diff([]string{"0123", "yes", "1e3", "0x1F", "1_000", "1_000", "0123"}, got); diff != "" {
		t.Errorf("passwords (-want +got):\n%s", diff)
	}
	if len(f.Pools) != 1 || f.Pools[0].Name != "007" {
		t.Errorf("pools %+v, want one named 007", f.Pools)
	}
}

// A null entry of a list is an empty entry at its own index, as MetalLB
// read it; it is not dropped, which would shift the others' indices.
func TestParseNullEntries(t *testing.T) {
	_, err := Parse([]byte("address-pools:\n- null\n- name: a\n  protocol: layer2\n"))
	if err == nil || err.Error() != "address-pools[0].name: required\naddress-pools[0].protocol: required (layer2 or bgp)" {
		t.Errorf("Parse error = %v, want the first pool's name and protocol required", err)
	}
	f, err := Parse([]byte("address-pools:\n- name: a\n  protocol: layer2\n  addresses: [null, 10.0.0.0/24]\nbgp-communities: {a: null}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"", "10.0.0.0/24"}, f.Pools[0].Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if v, ok := f.BGPCommunities["a"]; !ok || v != "" {
		t.Errorf("community a = %q, %v; want an empty value kept, for the configuration's checks to report", v, ok)
	}
}

func TestParseDuplicateKey(t *testing.T) {
	_, err := Parse([]byte("peers: []\npeers: []\n"))
	if err == nil || !strings.Contains(err.Error(), `key "peers" already set in map`) {
		t.Errorf("Parse error = %v, want a duplicate key error", err)
	}
}
