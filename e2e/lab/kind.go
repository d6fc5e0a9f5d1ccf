package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KindOptions configure the kind driver. e2e/README.md shows how to build
// the matching cluster: kind with kube-proxy off and the lab's proxy and
// endpoint writer as its stand-ins, Herald installed in Namespace, FRR and
// the clients as containers.
type KindOptions struct {
	// Kubeconfig of the kind cluster (`kind get kubeconfig --name herald`).
	Kubeconfig string
	// Kubectl and Docker are the commands to run (default "kubectl",
	// "docker").
	Kubectl, Docker string
	// Namespace is where Herald runs (default herald-system).
	Namespace string
	// SpeakerSelector selects the speaker Pods (default
	// "app.kubernetes.io/component=speaker"); SpeakerContainer names the
	// speaker's container in them (default "speaker").
	SpeakerSelector, SpeakerContainer string
	// ControllerDeployment is the controller's Deployment (default
	// "herald-controller").
	ControllerDeployment string
	// Router, Client and L2Client are the containers standing in for the
	// router (FRR), the routed client and the client on the nodes' network
	// (default herald-frr, herald-client, herald-l2client).
	Router, Client, L2Client string
	// RouterInfo is the router's AS and addresses on the nodes' network.
	RouterInfo RouterInfo
	// Plan are pools on the kind network (for layer 2) and off it (BGP).
	Plan AddressPlan
}

// Kind is the Driver of a kind cluster: the cluster through kubectl, the
// nodes, the router and the clients through `docker exec`.
type Kind struct {
	opts   KindOptions
	nodes  []Node
	routes map[string][]string // node -> default routes saved by LinkDown
}

// NewKind reads the cluster's nodes and returns the driver.
func NewKind(ctx context.Context, opts KindOptions) (*Kind, error) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&opts.Kubectl, "kubectl")
	def(&opts.Docker, "docker")
	def(&opts.Namespace, "herald-system")
	def(&opts.SpeakerSelector, "app.kubernetes.io/component=speaker")
	def(&opts.SpeakerContainer, "speaker")
	def(&opts.ControllerDeployment, "herald-controller")
	def(&opts.Router, "herald-frr")
	def(&opts.Client, "herald-client")
	def(&opts.L2Client, "herald-l2client")
	if opts.Kubeconfig == "" {
		return nil, errors.New("kind driver: kubeconfig must be set")
	}
	k := &Kind{opts: opts}
	out, err := k.kubectl(ctx, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Addresses []struct {
					Type    string `json:"type"`
					Address string `json:"address"`
				} `json:"addresses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("parse nodes: %w", err)
	}
	for _, it := range list.Items {
		n := Node{Name: it.Metadata.Name, Netns: it.Metadata.Name}
		for _, a := range it.Status.Addresses {
			ip, err := netip.ParseAddr(a.Address)
			if a.Type != "InternalIP" || err != nil {
				continue
			}
			if ip.Is4() && !n.IPv4.IsValid() {
				n.IPv4 = ip
			} else if ip.Is6() && !n.IPv6.IsValid() {
				n.IPv6 = ip
			}
		}
		k.nodes = append(k.nodes, n)
	}
	sort.Slice(k.nodes, func(i, j int) bool { return k.nodes[i].Name < k.nodes[j].Name })
	if len(k.nodes) == 0 {
		return nil, errors.New("kind driver: the cluster has no nodes")
	}
	return k, nil
}

func (k *Kind) kubectl(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, append([]string{k.opts.Kubectl, "--kubeconfig", k.opts.Kubeconfig}, args...)...)
}

func (k *Kind) docker(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, append([]string{k.opts.Docker}, args...)...)
}

// Kubeconfig implements Driver.
func (k *Kind) Kubeconfig() string { return k.opts.Kubeconfig }

// NodeNames implements Driver.
func (k *Kind) NodeNames() []string {
	var out []string
	for _, n := range k.nodes {
		out = append(out, n.Name)
	}
	return out
}

func (k *Kind) node(name string) (Node, error) {
	for _, n := range k.nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("no kind node %q", name)
}

// NodeAddress implements Driver.
func (k *Kind) NodeAddress(node string, f Family) (netip.Addr, error) {
	n, err := k.node(node)
	if err != nil {
		return netip.Addr{}, err
	}
	a := n.IPv4
	if f == IPv6 {
		a = n.IPv6
	}
	if !a.IsValid() {
		return a, fmt.Errorf("node %s has no %s InternalIP", node, f)
	}
	return a, nil
}

// NodeMAC implements Driver: eth0 of the node's container is on the kind
// network.
func (k *Kind) NodeMAC(ctx context.Context, node string) (net.HardwareAddr, error) {
	out, err := k.Exec(ctx, node, "ip", "-j", "link", "show", "dev", "eth0")
	if err != nil {
		return nil, err
	}
	return parseLinkMAC(out)
}

// container maps a host name to its container: kind node containers are
// named like their nodes.
func (k *Kind) container(host string) (string, error) {
	switch host {
	case HostRouter:
		return k.opts.Router, nil
	case HostClient:
		return k.opts.Client, nil
	case HostL2Client:
		return k.opts.L2Client, nil
	}
	n, err := k.node(host)
	return n.Name, err
}

// Exec implements Driver with `docker exec`.
func (k *Kind) Exec(ctx context.Context, host string, argv ...string) ([]byte, error) {
	c, err := k.container(host)
	if err != nil {
		return nil, err
	}
	return k.docker(ctx, append([]string{"exec", c}, argv...)...)
}

// Command implements Driver with `docker exec`; ending the local docker
// client does not end argv in the container.
func (k *Kind) Command(ctx context.Context, host string, argv ...string) (*exec.Cmd, error) {
	c, err := k.container(host)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, k.opts.Docker, append([]string{"exec", c}, argv...)...), nil
}

// HasSpeaker implements Driver: a kind cluster is set up with Herald.
func (k *Kind) HasSpeaker() bool { return true }

// speakerPod returns the name and container ID of the speaker Pod on node.
func (k *Kind) speakerPod(ctx context.Context, node string) (name, containerID string, ready bool, err error) {
	out, err := k.kubectl(ctx, "-n", k.opts.Namespace, "get", "pods", "-l", k.opts.SpeakerSelector,
		"--field-selector", "spec.nodeName="+node, "-o", "json")
	if err != nil {
		return "", "", false, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Status struct {
				ContainerStatuses []struct {
					Name        string `json:"name"`
					ContainerID string `json:"containerID"`
					Ready       bool   `json:"ready"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return "", "", false, fmt.Errorf("parse pods: %w", err)
	}
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == k.opts.SpeakerContainer {
				_, id, _ := strings.Cut(c.ContainerID, "://")
				return p.Metadata.Name, id, c.Ready, nil
			}
		}
	}
	return "", "", false, fmt.Errorf("no speaker Pod on node %s", node)
}

// SignalSpeaker implements Driver: the speaker container's main process,
// found with crictl inside the node container, gets sig.
func (k *Kind) SignalSpeaker(ctx context.Context, node string, sig syscall.Signal) error {
	_, id, _, err := k.speakerPod(ctx, node)
	if err != nil {
		return err
	}
	out, err := k.Exec(ctx, node, "crictl", "inspect", "--output", "go-template", "--template", "{{.info.pid}}", id)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("speaker pid on %s: %w", node, err)
	}
	_, err = k.Exec(ctx, node, "kill", "-s", strconv.Itoa(int(sig)), strconv.Itoa(pid))
	return err
}

// RestartSpeaker implements Driver: the node's speaker Pod is deleted and
// the DaemonSet's new one awaited.
func (k *Kind) RestartSpeaker(ctx context.Context, node string) error {
	name, _, _, err := k.speakerPod(ctx, node)
	if err == nil {
		// A stopped process ignores SIGTERM until continued.
		_ = k.SignalSpeaker(ctx, node, syscall.SIGCONT)
		if _, err := k.kubectl(ctx, "-n", k.opts.Namespace, "delete", "pod", name, "--wait=true", "--timeout=60s"); err != nil {
			return err
		}
	}
	return pollUntil(ctx, 120*time.Second, func() (bool, error) {
		n, _, ready, err := k.speakerPod(ctx, node)
		return err == nil && n != name && ready, nil
	})
}

// StopController implements Driver: scale the Deployment to zero and wait
// for its Pods to go.
func (k *Kind) StopController(ctx context.Context) error {
	d := "deployment/" + k.opts.ControllerDeployment
	if _, err := k.kubectl(ctx, "-n", k.opts.Namespace, "scale", d, "--replicas=0"); err != nil {
		return err
	}
	return pollUntil(ctx, 120*time.Second, func() (bool, error) {
		out, err := k.kubectl(ctx, "-n", k.opts.Namespace, "get", d, "-o", "jsonpath={.status.replicas}")
		s := strings.TrimSpace(string(out))
		return err == nil && (s == "" || s == "0"), nil
	})
}

// StartController implements Driver.
func (k *Kind) StartController(ctx context.Context) error {
	d := "deployment/" + k.opts.ControllerDeployment
	if _, err := k.kubectl(ctx, "-n", k.opts.Namespace, "scale", d, "--replicas=1"); err != nil {
		return err
	}
	_, err := k.kubectl(ctx, "-n", k.opts.Namespace, "rollout", "status", d, "--timeout=120s")
	return err
}

// LinkDown implements Driver. The node's default routes, which the
// kernel drops with the link, are remembered for LinkUp.
func (k *Kind) LinkDown(ctx context.Context, node string) error {
	var routes []string
	for _, fam := range []string{"-4", "-6"} {
		out, err := k.Exec(ctx, node, "ip", fam, "route", "show", "default")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				routes = append(routes, fam+" "+line)
			}
		}
	}
	if k.routes == nil {
		k.routes = map[string][]string{}
	}
	k.routes[node] = routes
	_, err := k.Exec(ctx, node, "ip", "link", "set", "eth0", "down")
	return err
}

// LinkUp implements Driver.
func (k *Kind) LinkUp(ctx context.Context, node string) error {
	if _, err := k.Exec(ctx, node, "ip", "link", "set", "eth0", "up"); err != nil {
		return err
	}
	for _, r := range k.routes[node] {
		f := strings.Fields(r)
		argv := append([]string{"ip", f[0], "route", "replace"}, f[1:]...)
		if _, err := k.Exec(ctx, node, argv...); err != nil {
			return err
		}
	}
	return nil
}

// Router implements Driver.
func (k *Kind) Router() RouterInfo { return k.opts.RouterInfo }

// Vtysh implements Driver: FRR's container runs vtysh with its default
// sockets.
func (k *Kind) Vtysh(ctx context.Context, command string) ([]byte, error) {
	return k.Exec(ctx, HostRouter, "vtysh", "-c", command)
}

// Plan implements Driver.
func (k *Kind) Plan() AddressPlan { return k.opts.Plan }
