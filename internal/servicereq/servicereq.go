// Package servicereq reads what a LoadBalancer Service asks of Herald: it
// turns a Service (spec and annotations, Herald's or MetalLB's alias
// prefixes) into a model.Request for the allocator, and decides whether a
// Service is Herald's to serve at all.
//
// It is pure: it reads the Service value it is given and nothing else.
// Errors name the annotation or field at fault.
package servicereq

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/model"
)

// Class says which Services are Herald's.
type Class struct {
	// Name is the loadBalancerClass Herald answers to ("" for none).
	Name string
	// Only restricts Herald to Services whose class equals Name, leaving
	// class-less Services to another implementation.
	Only bool
}

// Handles reports whether svc is a LoadBalancer Service that Herald serves.
func (c Class) Handles(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == "" {
		return !c.Only || c.Name == ""
	}
	return c.Name != "" && *svc.Spec.LoadBalancerClass == c.Name
}

// Error is a problem with what a Service asks for.
type Error struct {
	// Field is the annotation key or spec field at fault.
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Field + ": " + e.Message }

// FromService builds the allocator request for svc. nsLabels are the labels
// of the Service's namespace (for pools' namespace selectors).
//
// On error the request is still returned with everything else read
// (sharing key, ports, traffic policy, the status addresses in Current),
// so a caller can hold on to what the Service has (see Holding).
func FromService(svc *corev1.Service, nsLabels map[string]string) (model.Request, error) {
	req := model.Request{
		Service:         model.ServiceKey{Namespace: svc.Namespace, Name: svc.Name},
		ServiceLabels:   svc.Labels,
		NamespaceLabels: nsLabels,
	}
	var first error
	fail := func(field, msg string) {
		if first == nil {
			first = &Error{Field: field, Message: msg}
		}
	}
	ann := svc.Annotations
	if v, _, ok := v1beta1.LookupAnnotation(ann, v1beta1.AnnotationAddressPool); ok {
		req.Pool = strings.TrimSpace(v)
	}
	if v, _, ok := v1beta1.LookupAnnotation(ann, v1beta1.AnnotationAllowSharedIP); ok {
		req.SharingKey = strings.TrimSpace(v)
	}
	// An empty loadBalancerIPs annotation (a chart's empty default) asks
	// for nothing, as in MetalLB.
	if v, key, ok := v1beta1.LookupAnnotation(ann, v1beta1.AnnotationLoadBalancerIPs); ok && strings.TrimSpace(v) != "" {
		ips, err := ParseIPList(v)
		switch {
		case err != nil:
			fail("annotation "+key, err.Error())
		case svc.Spec.LoadBalancerIP != "":
			fail("annotation "+key, "cannot be used together with spec.loadBalancerIP")
		default:
			req.IPs = ips
		}
	} else if s := svc.Spec.LoadBalancerIP; s != "" {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			fail("spec.loadBalancerIP", fmt.Sprintf("%q is not an IP address", s))
		} else {
			req.IPs = []netip.Addr{ip.Unmap()}
		}
	}

	if p := svc.Spec.IPFamilyPolicy; p != nil {
		switch *p {
		case corev1.IPFamilyPolicySingleStack:
			req.Policy = model.SingleStack
		case corev1.IPFamilyPolicyPreferDualStack:
			req.Policy = model.PreferDualStack
		case corev1.IPFamilyPolicyRequireDualStack:
			req.Policy = model.RequireDualStack
		default:
			fail("spec.ipFamilyPolicy", fmt.Sprintf("unknown policy %q", *p))
		}
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			req.Families = append(req.Families, model.IPv4)
		case corev1.IPv6Protocol:
			req.Families = append(req.Families, model.IPv6)
		default:
			fail("spec.ipFamilies", fmt.Sprintf("unknown family %q", f))
		}
	}

	for _, p := range svc.Spec.Ports {
		proto := model.TCP
		switch p.Protocol {
		case corev1.ProtocolUDP:
			proto = model.UDP
		case corev1.ProtocolSCTP:
			proto = model.SCTP
		}
		req.Ports = append(req.Ports, model.Port{Protocol: proto, Port: uint16(p.Port)})
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		req.Local = true
		req.Selector = canonicalSelector(svc.Spec.Selector)
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil {
			req.Current = append(req.Current, ip.Unmap())
		}
	}
	return req, first
}

// Holding turns req (from FromService, whatever its error) into the
// request that keeps exactly the addresses of the Service's status,
// whatever else it asks for: with them as its requested IPs, no pool
// named, and the family policy they make up (their families in status
// order, single or dual stack). A controller that starts learns the
// addresses in use with it, so that an address stays reserved for its
// Service even while the Service's annotations do not parse or its
// policy asks for more than it has; the normal pass then decides what
// the Service gets. ok is false when the status holds no address.
func Holding(req model.Request) (model.Request, bool) {
	if len(req.Current) == 0 {
		return req, false
	}
	req.IPs, req.Pool = req.Current, ""
	req.Families = req.Families[:0:0]
	for _, ip := range req.Current {
		req.Families = append(req.Families, model.FamilyOf(ip))
	}
	req.Policy = model.SingleStack
	if len(req.Current) > 1 {
		req.Policy = model.RequireDualStack
	}
	return req, true
}

// ParseIPList parses the loadBalancerIPs annotation: a comma-separated list
// of IP addresses, at most one per family.
func ParseIPList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	seen := map[model.Family]netip.Addr{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty entry in %q", s)
		}
		ip, err := netip.ParseAddr(part)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address", part)
		}
		ip = ip.Unmap()
		f := model.FamilyOf(ip)
		if prev, dup := seen[f]; dup {
			return nil, fmt.Errorf("at most one address per family: %s and %s are both %s", prev, ip, f)
		}
		seen[f] = ip
		out = append(out, ip)
	}
	return out, nil
}

// canonicalSelector renders a pod selector in a stable form, so Services
// selecting the same pods compare equal.
func canonicalSelector(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(sel[k])
	}
	return b.String()
}
