package lab

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// frrDaemons are started in this order; bgpd and bfdd connect to zebra.
var frrDaemons = []string{"zebra", "bgpd", "bfdd"}

// FRRConfig renders the router's bgpd configuration: eBGP with every node
// (v4 sessions carry IPv4 unicast, v6 sessions IPv6 unicast), no policy
// needed to accept routes, ECMP over up to 8 paths, and short timers so a
// session comes up within a second or two of a speaker starting. Every
// session is watched by BFD (profile BFDProfileName, BFDConfig) once the
// node runs BFD too (a BGPPeer with a bfdProfile); until then BFD stays
// down and changes nothing.
func FRRConfig(nodes []Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname herald-rtr\n!\n")
	fmt.Fprintf(&b, "router bgp %d\n", RouterASN)
	fmt.Fprintf(&b, " bgp router-id %s\n", RouterV4)
	b.WriteString(" no bgp ebgp-requires-policy\n")
	b.WriteString(" no bgp default ipv4-unicast\n")
	b.WriteString(" bgp log-neighbor-changes\n")
	for _, g := range []string{"nodes4", "nodes6"} {
		fmt.Fprintf(&b, " neighbor %s peer-group\n", g)
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n", g, NodeASN)
		fmt.Fprintf(&b, " neighbor %s timers 1 3\n", g)
		fmt.Fprintf(&b, " neighbor %s timers connect 1\n", g)
		fmt.Fprintf(&b, " neighbor %s bfd profile %s\n", g, BFDProfileName)
	}
	for _, n := range nodes {
		fmt.Fprintf(&b, " neighbor %s peer-group nodes4\n", n.IPv4)
		fmt.Fprintf(&b, " neighbor %s description %s\n", n.IPv4, n.Name)
	}
	for _, n := range nodes {
		fmt.Fprintf(&b, " neighbor %s peer-group nodes6\n", n.IPv6)
		fmt.Fprintf(&b, " neighbor %s description %s\n", n.IPv6, n.Name)
	}
	b.WriteString(" !\n address-family ipv4 unicast\n  neighbor nodes4 activate\n  maximum-paths 8\n exit-address-family\n")
	b.WriteString(" !\n address-family ipv6 unicast\n  neighbor nodes6 activate\n  maximum-paths 8\n exit-address-family\n")
	b.WriteString("exit\n!\n")
	return b.String()
}

// BFDProfileName is the router's BFD profile for the nodes' sessions.
const BFDProfileName = "herald"

// BFDConfig is the router's bfdd configuration: 100 ms intervals, 3
// missed packets take a session down.
func BFDConfig() string {
	return "hostname herald-rtr\n!\nbfd\n profile " + BFDProfileName +
		"\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n !\n!\n"
}

func (l *Lab) frrDir() string { return filepath.Join(l.Dir, "frr") }

// frrSpecs writes FRR's files (owned by user frr, as the daemons drop to
// it) and returns the process specs of its daemons, in foreground mode so
// the lab records their pids and keeps their logs.
func (l *Lab) frrSpecs() ([]ProcSpec, error) {
	d := l.frrDir()
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	files := map[string]string{
		"zebra.conf": "hostname herald-rtr\n!\n",
		"bgpd.conf":  FRRConfig(l.state.Nodes),
		"bfdd.conf":  BFDConfig(),
		"vtysh.conf": "service integrated-vtysh-config\n",
		"README.lab": "FRR files of the Herald lab's router (namespace " + NetnsRouter + ").\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	if err := chownTree(d, "frr"); err != nil {
		return nil, err
	}
	var specs []ProcSpec
	for _, dmn := range frrDaemons {
		argv := []string{"/usr/lib/frr/" + dmn,
			"-f", filepath.Join(d, dmn+".conf"), "-i", filepath.Join(d, dmn+".pid"),
			"-z", filepath.Join(d, "zserv.api"), "--vty_socket", d, "-P", "0", "--log", "stdout"}
		switch dmn {
		case "zebra":
			// --v6-rr-semantics: replace IPv6 routes in place; without it
			// zebra deletes and adds one to change it, and a route swapped
			// for an equal one (graceful restart's fresh path for its
			// stale one) is gone for a moment.
			argv = append(argv, "-s", "90000000", "--v6-rr-semantics")
		case "bfdd":
			argv = append(argv, "--bfdctl", filepath.Join(d, "bfdd.sock"))
		}
		specs = append(specs, ProcSpec{Name: "frr-" + dmn, Netns: NetnsRouter, Argv: argv})
	}
	return specs, nil
}

// startFRR starts zebra, waits for its API socket, then bgpd and bfdd.
func (l *Lab) startFRR(ctx context.Context, specs []ProcSpec) error {
	for i, s := range specs {
		if err := l.startProc(s); err != nil {
			return err
		}
		if i == 0 {
			sock := filepath.Join(l.frrDir(), "zserv.api")
			if err := pollUntil(ctx, 10*time.Second, func() (bool, error) {
				_, err := os.Stat(sock)
				return err == nil, nil
			}); err != nil {
				return fmt.Errorf("zebra did not create %s (see %s): %w", sock, l.LogFile(s.Name), err)
			}
		}
	}
	// bgpd answers on its vty once it has read its configuration.
	return pollUntil(ctx, 10*time.Second, func() (bool, error) {
		_, err := l.Vtysh(ctx, "show bgp summary json")
		return err == nil, nil
	})
}

// Vtysh runs one vtysh command against the router's FRR and returns its
// output (JSON for commands ending in "json").
func (l *Lab) Vtysh(ctx context.Context, command string) ([]byte, error) {
	return l.Exec(ctx, HostRouter, "vtysh", "--vty_socket", l.frrDir(), "-c", command)
}

func chownTree(dir, username string) error {
	u, err := user.Lookup(username)
	if err != nil {
		return fmt.Errorf("user %s (is frr installed?): %w", username, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
