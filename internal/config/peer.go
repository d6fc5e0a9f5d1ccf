package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// maxMD5KeyLen is the longest TCP MD5 key Linux accepts
// (TCP_MD5SIG_MAXKEYLEN).
const maxMD5KeyLen = 80

// peerSet is what advertisements need to know about peers.
type peerSet struct {
	// known holds every peer name, valid or not, so an advertisement
	// naming an invalid peer is not reported a second time.
	known map[string]bool
	// valid holds the valid peers.
	valid map[string]*model.Peer
}

// peers validates the peers, fills cfg.Peers with the valid ones (sorted
// by name) and reports peers that would open the same session.
func (b *builder) peers(cfg *model.Config, entries []entry[v1beta1.BGPPeer], bfd bfdSet) peerSet {
	set := peerSet{known: map[string]bool{}, valid: map[string]*model.Peer{}}
	type session struct {
		addr netip.Addr
		port uint16
		sels string
	}
	sessions := map[session]*object{}
	for _, e := range entries {
		set.known[e.obj.Name] = true
		p, ok := b.peer(e, bfd)
		if !ok {
			continue
		}
		s := session{p.Addr, p.Port, strings.Join(selectorStrings(p.NodeSelectors), "\x00")}
		if prev, dup := sessions[s]; dup {
			b.add(e.object, "spec.peerAddress", "same peerAddress, peerPort and nodeSelectors as %s", b.describe(prev))
			continue
		}
		sessions[s] = e.object
		set.valid[p.Name] = p
		cfg.Peers = append(cfg.Peers, p) // entries are sorted by name
	}
	return set
}

func (b *builder) peer(e entry[v1beta1.BGPPeer], bfd bfdSet) (*model.Peer, bool) {
	spec := &e.obj.Spec
	o := e.object
	ok := true
	bad := func(field, format string, args ...any) {
		b.add(o, field, format, args...)
		ok = false
	}
	p := &model.Peer{
		Name:            e.obj.Name,
		MyASN:           spec.MyASN,
		ASN:             spec.PeerASN,
		Port:            spec.PeerPort,
		Password:        spec.Password,
		EBGPMultiHop:    spec.EBGPMultiHop,
		GracefulRestart: spec.EnableGracefulRestart,
		Source:          source(o),
	}
	if p.MyASN == 0 {
		bad("spec.myASN", "required (non-zero)")
	}
	switch spec.DynamicASN {
	case "":
		if p.ASN == 0 {
			bad("spec.peerASN", "required (non-zero) unless dynamicASN is set")
		}
	case v1beta1.DynamicASNInternal, v1beta1.DynamicASNExternal:
		p.Dynamic = model.DynamicASN(spec.DynamicASN)
		switch {
		case p.ASN != 0:
			bad("spec.dynamicASN", "set only one of peerASN and dynamicASN")
		case p.Dynamic == model.DynamicInternal:
			p.ASN = p.MyASN
		}
	default:
		bad("spec.dynamicASN", "%q is neither %s nor %s", spec.DynamicASN, v1beta1.DynamicASNInternal, v1beta1.DynamicASNExternal)
	}
	if p.Port == 0 {
		p.Port = DefaultPeerPort
	}

	var err error
	if spec.PeerAddress == "" {
		bad("spec.peerAddress", "required")
	} else if p.Addr, err = parsePeerAddr(spec.PeerAddress); err != nil {
		bad("spec.peerAddress", "%v", err)
	}
	if spec.SourceAddress != "" {
		if p.SrcAddr, err = parsePeerAddr(spec.SourceAddress); err != nil {
			bad("spec.sourceAddress", "%v", err)
		} else if p.Addr.IsValid() && p.SrcAddr.Is4() != p.Addr.Is4() {
			bad("spec.sourceAddress", "%s and peerAddress %s are of different families", p.SrcAddr, p.Addr)
		}
	}
	if spec.RouterID != "" {
		if a, err := netip.ParseAddr(spec.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
			bad("spec.routerID", "%q is not a non-zero IPv4 address", spec.RouterID)
		} else {
			p.RouterID = a
		}
	}

	// Without holdTime: 3 × keepaliveTime when that is set (as MetalLB
	// does), else the default.
	p.HoldTime = DefaultHoldTime
	holdOK := true
	if spec.HoldTime == nil && spec.KeepaliveTime != nil && spec.KeepaliveTime.Duration > 0 {
		p.HoldTime = 3 * spec.KeepaliveTime.Duration
		if p.HoldTime > 65535*time.Second {
			bad("spec.keepaliveTime", "%s would make holdTime (3 × keepaliveTime when holdTime is not set) above 65535s", spec.KeepaliveTime.Duration)
			holdOK = false
		}
	}
	if spec.HoldTime != nil {
		p.HoldTime = spec.HoldTime.Duration
		if msg := checkSeconds(p.HoldTime); msg != "" {
			bad("spec.holdTime", "%s %s", p.HoldTime, msg)
			holdOK = false
		} else if p.HoldTime != 0 && (p.HoldTime < 3*time.Second || p.HoldTime > 65535*time.Second) {
			bad("spec.holdTime", "%s is neither 0 nor between 3s and 65535s", p.HoldTime)
			holdOK = false
		}
	}
	switch {
	case spec.KeepaliveTime == nil:
		p.KeepaliveTime = (p.HoldTime / 3).Truncate(time.Second)
	case p.HoldTime == 0 && spec.KeepaliveTime.Duration != 0:
		bad("spec.keepaliveTime", "%s: keepalives are off when holdTime is 0; remove keepaliveTime", spec.KeepaliveTime.Duration)
	default:
		p.KeepaliveTime = spec.KeepaliveTime.Duration
		if msg := checkSeconds(p.KeepaliveTime); msg != "" {
			bad("spec.keepaliveTime", "%s %s", p.KeepaliveTime, msg)
		} else if p.HoldTime != 0 && p.KeepaliveTime == 0 {
			bad("spec.keepaliveTime", "must be positive")
		} else if holdOK && p.KeepaliveTime >= p.HoldTime && p.HoldTime != 0 {
			bad("spec.keepaliveTime", "%s is not less than holdTime %s", p.KeepaliveTime, p.HoldTime)
		}
	}
	p.ConnectTime = DefaultConnectTime
	if spec.ConnectTime != nil {
		p.ConnectTime = spec.ConnectTime.Duration
		if msg := checkSeconds(p.ConnectTime); msg != "" {
			bad("spec.connectTime", "%s %s", p.ConnectTime, msg)
		} else if p.ConnectTime == 0 {
			bad("spec.connectTime", "must be positive")
		}
	}

	if len(spec.Password) > maxMD5KeyLen {
		bad("spec.password", "longer than %d bytes, the TCP MD5 key limit", maxMD5KeyLen)
	}
	if ref := spec.PasswordSecret; ref != nil {
		switch {
		case spec.Password != "":
			bad("spec.passwordSecret", "set only one of password and passwordSecret")
		case ref.Namespace != "" && ref.Namespace != b.ns:
			bad("spec.passwordSecret.namespace", "%q is not %s; the Secret must live in %s", ref.Namespace, b.ns, b.ns)
		case ref.Name == "":
			bad("spec.passwordSecret.name", "required")
		default:
			if msgs := validation.IsDNS1123Subdomain(ref.Name); len(msgs) > 0 {
				bad("spec.passwordSecret.name", "%q: %s", ref.Name, strings.Join(msgs, "; "))
			}
		}
		p.PasswordSecret = &model.SecretRef{Namespace: b.ns, Name: ref.Name}
	}
	if spec.EBGPMultiHop && p.IBGP() && p.ASN != 0 {
		what := "myASN equals peerASN"
		if p.Dynamic == model.DynamicInternal {
			what = "dynamicASN is internal"
		}
		bad("spec.ebgpMultiHop", "ebgpMultiHop is for eBGP peers; %s", what)
	}
	if name := spec.BFDProfile; name != "" {
		switch prof, known := bfd[name]; {
		case !known:
			b.addDangling(o, "spec.bfdProfile", "BFDProfile %q does not exist", name)
			ok = false
		case prof == nil:
			ok = false // the profile's own errors are reported on it
		default:
			p.BFD = prof
		}
	}
	sels, selOK := b.selectors(o, "spec.nodeSelectors", spec.NodeSelectors)
	p.NodeSelectors = sels
	return p, ok && selOK
}

// parsePeerAddr parses a peer or source address: an IPv4 or IPv6 address,
// not unspecified, not IPv4-mapped, without a zone.
func parsePeerAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if err := checkAddr(a); err != nil {
		return netip.Addr{}, err
	}
	if a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("%s is the unspecified address", a)
	}
	return a, nil
}

// checkSeconds returns why d is not a usable BGP timer value, or "".
func checkSeconds(d time.Duration) string {
	switch {
	case d < 0:
		return "is negative"
	case d%time.Second != 0:
		return "is not a whole number of seconds"
	}
	return ""
}
