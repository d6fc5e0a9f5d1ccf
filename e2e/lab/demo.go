package lab

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

//go:embed manifests/*.yaml
var manifests embed.FS

// renderManifest fills one of the embedded manifests with the lab's plan.
func renderManifest(name string, plan AddressPlan) ([]byte, error) {
	t, err := template.ParseFS(manifests, "manifests/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]any{
		"Pool": plan.Demo.Addresses(), "BGPPool": plan.BGP.Addresses(),
		"RouterASN": RouterASN, "NodeASN": NodeASN, "RouterV4": RouterV4, "RouterV6": RouterV6,
	})
	return b.Bytes(), err
}

// ErrDemoNoAnswer says the demo's Service got its addresses but did not
// answer from the clients.
var ErrDemoNoAnswer = errors.New("the EXTERNAL-IP did not answer")

// Demo shows Herald's main job on the lab: it applies a pool, an
// L2Advertisement and a LoadBalancer Service, shows the EXTERNAL-IP, checks
// that every node's kube-proxy stand-in serves it, curls it from the L2 and
// the routed client and says which node answered, then tells what to try
// next. It fails when something does not work.
func (l *Lab) Demo(ctx context.Context, w io.Writer) error {
	rel := func(p string) string {
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	kubectl := rel(l.KubectlWrapper())
	y, err := renderManifest("demo.yaml", l.Plan())
	if err != nil {
		return err
	}
	demoFile := filepath.Join(l.Dir, "demo.yaml")
	if err := os.WriteFile(demoFile, y, 0o644); err != nil {
		return err
	}
	by, err := renderManifest("demo-bgp.yaml", l.Plan())
	if err != nil {
		return err
	}
	bgpFile := filepath.Join(l.Dir, "demo-bgp.yaml")
	if err := os.WriteFile(bgpFile, by, 0o644); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n$ %s apply -f %s\n", kubectl, rel(demoFile))
	out, err := l.Kubectl(ctx, nil, "apply", "-f", demoFile)
	w.Write(out)
	if err != nil {
		return err
	}
	cs, err := l.Clientset()
	if err != nil {
		return err
	}
	var ips []netip.Addr
	err = pollUntil(ctx, 30*time.Second, func() (bool, error) {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "demo", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ips = ips[:0]
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				ips = append(ips, a)
			}
		}
		return len(ips) == 2, nil
	})
	fmt.Fprintf(w, "\n$ %s get svc demo\n", kubectl)
	out, _ = l.Kubectl(ctx, nil, "get", "svc", "demo")
	w.Write(out)
	if err != nil {
		return fmt.Errorf("the controller did not assign both addresses to Service demo (see %s): %w", rel(l.LogFile(ProcController)), err)
	}

	// Each node's stand-in for kube-proxy serves the IPs locally.
	for _, n := range l.state.Nodes {
		for _, ip := range ips {
			var body string
			err := pollUntil(ctx, 10*time.Second, func() (bool, error) {
				body, _ = Curl(ctx, l, n.Name, ip, 80)
				return body == n.Name, nil
			})
			if err != nil {
				return fmt.Errorf("the backend on %s does not serve %s (see %s)", n.Name, URL(ip, 80), rel(l.LogFile(ProcProxy(n.Name))))
			}
		}
	}
	fmt.Fprintf(w, "\nevery node's backend serves %v locally (checked with curl inside each node)\n", ips)

	fmt.Fprintf(w, "\ncurl from the clients (the body is the name of the node that answered):\n")
	failed := 0
	// Give the speakers a moment to elect and announce; without a speaker
	// one try each says enough.
	wait := 10 * time.Second
	if !l.HasSpeaker() {
		wait = 0
	}
	for _, host := range []string{HostL2Client, HostClient} {
		for _, ip := range ips {
			var body string
			var cerr error
			_ = pollUntil(ctx, wait, func() (bool, error) {
				body, cerr = Curl(ctx, l, host, ip, 80)
				return cerr == nil, nil
			})
			ns, _ := l.netnsOf(host)
			fmt.Fprintf(w, "$ ip netns exec %s curl -s -g %s\n", ns, URL(ip, 80))
			if cerr != nil {
				failed++
				fmt.Fprintf(w, "  nothing answered\n")
				continue
			}
			fmt.Fprintf(w, "  %s\n  (answered by node %s)\n", body, body)
		}
	}
	if failed > 0 {
		if !l.HasSpeaker() {
			fmt.Fprintf(w, "\nNothing answered: there is no speaker yet (%s is not built; it comes with the layer-2 speaker, issue 4),\nso no node answers ARP/NDP for the EXTERNAL-IP. Everything before this step works.\n", rel(l.Bin("speaker")))
		} else {
			fmt.Fprintf(w, "\nNothing answered from the clients: see the speakers' logs in %s\n", rel(l.logDir()))
		}
	}

	lab := rel(l.Bin("lab"))
	fmt.Fprintf(w, `
Try it yourself (as root):
  %[1]s get svc,ipaddresspools,l2advertisements,servicel2statuses -A
  ip netns exec %[2]s curl -s -g %[3]s
  ip netns exec %[2]s arping -c 1 -I eth0 %[4]s           # which MAC answers

Kill a node and watch the IP move (the lab's processes are recorded in %[5]s):
  %[6]s kill n1 KILL          # SIGKILL node n1's speaker (or STOP / CONT)
  %[6]s link n1 down          # or cut node n1 off the segment; 'up' to repair
  %[6]s restart speaker-n1    # start it again
  %[6]s status

Try BGP: peers, a pool on no segment, a Service (every node announces it; the router balances):
  %[1]s apply -f %[7]s
  ip netns exec %[8]s vtysh --vty_socket %[9]s -c 'show bgp summary' -c 'show bfd peers brief'
  %[1]s get bgpsessionstatuses -n herald-system -o wide
  ip netns exec %[8]s ip route
  ip netns exec %[10]s curl -s -g http://<EXTERNAL-IP of demo-bgp>/

Tear down: make lab-down   (or: %[6]s down)
`, kubectl, NetnsL2Client, URL(ips[0], 80), ips[0], rel(l.runDir()), lab, rel(bgpFile), NetnsRouter, rel(l.frrDir()), NetnsClient)
	if failed > 0 {
		return fmt.Errorf("%w from %d of %d client probes", ErrDemoNoAnswer, failed, 2*len(ips))
	}
	return nil
}
