package legacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// File is a parsed MetalLB v0.12 configuration. The JSON tags are the
// ConfigMap's keys.
type File struct {
	Peers          []Peer            `json:"peers,omitempty"`
	BGPCommunities map[string]string `json:"bgp-communities,omitempty"`
	Pools          []Pool            `json:"address-pools,omitempty"`
	BFDProfiles    []BFDProfile      `json:"bfd-profiles,omitempty"`
}

// Peer is one entry of peers.
type Peer struct {
	PeerAddress   string           `json:"peer-address,omitempty"`
	PeerASN       uint32           `json:"peer-asn,omitempty"`
	MyASN         uint32           `json:"my-asn,omitempty"`
	PeerPort      uint16           `json:"peer-port,omitempty"`
	HoldTime      *metav1.Duration `json:"hold-time,omitempty"`
	KeepaliveTime *metav1.Duration `json:"keepalive-time,omitempty"`
	RouterID      string           `json:"router-id,omitempty"`
	SourceAddress string           `json:"source-address,omitempty"`
	Password      string           `json:"password,omitempty"`
	EBGPMultiHop  bool             `json:"ebgp-multihop,omitempty"`
	NodeSelectors []NodeSelector   `json:"node-selectors,omitempty"`
	BFDProfile    string           `json:"bfd-profile,omitempty"`
}

// NodeSelector is a label selector in the ConfigMap's spelling.
type NodeSelector struct {
	MatchLabels      map[string]string     `json:"match-labels,omitempty"`
	MatchExpressions []SelectorRequirement `json:"match-expressions,omitempty"`
}

// SelectorRequirement is one match-expressions entry.
type SelectorRequirement struct {
	Key      string   `json:"key,omitempty"`
	Operator string   `json:"operator,omitempty"`
	Values   []string `json:"values,omitempty"`
}

// The address pool protocols.
const (
	ProtocolLayer2 = "layer2"
	ProtocolBGP    = "bgp"
)

// Pool is one entry of address-pools.
type Pool struct {
	Name              string             `json:"name,omitempty"`
	Protocol          string             `json:"protocol,omitempty"`
	Addresses         []string           `json:"addresses,omitempty"`
	AutoAssign        *bool              `json:"auto-assign,omitempty"`
	AvoidBuggyIPs     bool               `json:"avoid-buggy-ips,omitempty"`
	BGPAdvertisements []BGPAdvertisement `json:"bgp-advertisements,omitempty"`
}

// BGPAdvertisement is one entry of a pool's bgp-advertisements.
type BGPAdvertisement struct {
	AggregationLength   *int32   `json:"aggregation-length,omitempty"`
	AggregationLengthV6 *int32   `json:"aggregation-length-v6,omitempty"`
	LocalPref           *uint32  `json:"localpref,omitempty"`
	Communities         []string `json:"communities,omitempty"`
}

// BFDProfile is one entry of bfd-profiles.
type BFDProfile struct {
	Name             string  `json:"name,omitempty"`
	ReceiveInterval  *uint32 `json:"receive-interval,omitempty"`
	TransmitInterval *uint32 `json:"transmit-interval,omitempty"`
	DetectMultiplier *uint32 `json:"detect-multiplier,omitempty"`
	EchoInterval     *uint32 `json:"echo-interval,omitempty"`
	EchoMode         bool    `json:"echo-mode,omitempty"`
	PassiveMode      bool    `json:"passive-mode,omitempty"`
	MinimumTTL       *uint32 `json:"minimum-ttl,omitempty"`
}

// FieldError is one problem in the ConfigMap data. Path is like
// "address-pools[2].protocol"; it is empty for problems with the whole
// document (such as a YAML syntax error).
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Error is every problem Parse found: wrong keys and types first (keys in
// sorted order), then violated rules (in document order).
type Error struct {
	Errors []FieldError
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "\n")
}

// Parse reads a MetalLB v0.12 configuration. Empty data is an empty File.
// Unknown keys, wrongly typed values, duplicate keys, missing pool names
// or protocols, duplicate pool names and unknown protocols are errors; the
// returned error is an *Error listing all of them.
func Parse(data []byte) (*File, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, &Error{Errors: []FieldError{{Message: "invalid YAML: " + err.Error()}}}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, &Error{Errors: []FieldError{{Message: "invalid YAML: " + err.Error()}}}
	}
	c := checker{raw: rawScalars(data)}
	clean, err := json.Marshal(c.check("", doc, fileType))
	if err != nil { // cannot happen: clean holds only JSON values
		return nil, &Error{Errors: []FieldError{{Message: err.Error()}}}
	}
	f := &File{}
	if err := json.Unmarshal(clean, f); err != nil { // cannot happen either
		return nil, &Error{Errors: []FieldError{{Message: err.Error()}}}
	}
	errs := append(c.errs, f.validate()...)
	if len(errs) > 0 {
		return nil, &Error{Errors: errs}
	}
	return f, nil
}

// validate checks what the legacy format itself requires; values are left
// to config.Build.
func (f *File) validate() []FieldError {
	var errs []FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	seen := map[string]int{}
	for i, p := range f.Pools {
		path := fmt.Sprintf("address-pools[%d]", i)
		switch {
		case p.Name == "":
			add(path+".name", "required")
		case len(validation.IsDNS1123Subdomain(p.Name)) > 0:
			add(path+".name", "%q is not a valid Kubernetes object name (lowercase letters, digits, '-' and '.'); Herald makes an IPAddressPool of each pool, so rename it and the Services' address-pool annotations", p.Name)
		default:
			if j, ok := seen[p.Name]; ok {
				add(path+".name", "%q is already the name of address-pools[%d]", p.Name, j)
			} else {
				seen[p.Name] = i
			}
		}
		switch p.Protocol {
		case ProtocolLayer2:
			if len(p.BGPAdvertisements) > 0 {
				add(path+".bgp-advertisements", "only allowed with protocol bgp")
			}
		case ProtocolBGP:
		case "":
			add(path+".protocol", "required (layer2 or bgp)")
		default:
			add(path+".protocol", "%q is not layer2 or bgp", p.Protocol)
		}
	}
	for i, b := range f.BFDProfiles {
		if b.Name == "" {
			add(fmt.Sprintf("bfd-profiles[%d].name", i), "required")
		}
	}
	return errs
}
