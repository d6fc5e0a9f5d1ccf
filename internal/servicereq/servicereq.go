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
func FromService(svc *corev1.Service, nsLabels map[string]string) (model.Request, error) {
	req := model.Request{
		Service:         model.ServiceKey{Namespace: svc.Namespace, Name: svc.Name},
		ServiceLabels:   svc.Labels,
		NamespaceLabels: nsLabels,
	}
	ann := svc.Annotations
	if v, _, ok := v1beta1.LookupAnnotation(ann, v1beta1.AnnotationAddressPool); ok {
		req.Pool = strings.TrimSpace(v)
	}
	if v, _, ok := v1beta1.LookupAnnotation(ann, v1beta1.AnnotationAllowSharedIP); ok {
		req.SharingKey = strings.TrimSpace(v)
	}
	if v, key, ok := v1beta1.LookupAnnotation(ann, v1beta1.AnnotationLoadBalancerIPs); ok {
		ips, err := ParseIPList(v)
		if err != nil {
			return req, &Error{Field: "annotation " + key, Message: err.Error()}
		}
		if svc.Spec.LoadBalancerIP != "" {
			return req, &Error{Field: "annotation " + key, Message: "cannot be used together with spec.loadBalancerIP"}
		}
		req.IPs = ips
	} else if s := svc.Spec.LoadBalancerIP; s != "" {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			return req, &Error{Field: "spec.loadBalancerIP", Message: fmt.Sprintf("%q is not an IP address", s)}
		}
		req.IPs = []netip.Addr{ip.Unmap()}
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
			return req, &Error{Field: "spec.ipFamilyPolicy", Message: fmt.Sprintf("unknown policy %q", *p)}
		}
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			req.Families = append(req.Families, model.IPv4)
		case corev1.IPv6Protocol:
			req.Families = append(req.Families, model.IPv6)
		default:
			return req, &Error{Field: "spec.ipFamilies", Message: fmt.Sprintf("unknown family %q", f)}
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
	return req, nil
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
