package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// debTools maps each command the lab runs to the Debian package that
// provides it.
var debTools = []struct{ path, pkg string }{
	{"ip", "iproute2"},
	{"bridge", "iproute2"},
	{"ping", "iputils-ping"},
	{"arping", "iputils-arping"},
	{"ndisc6", "ndisc6"},
	{"curl", "curl"},
	{"tcpdump", "tcpdump"},
	{"vtysh", "frr"},
	{"/usr/lib/frr/zebra", "frr"},
	{"/usr/lib/frr/bgpd", "frr"},
	{"/usr/lib/frr/bfdd", "frr"},
}

// MissingPackages lists the Debian packages whose commands are missing.
func MissingPackages() []string {
	seen := map[string]bool{}
	var pkgs []string
	for _, t := range debTools {
		if t.path[0] == '/' {
			if _, err := os.Stat(t.path); err == nil {
				continue
			}
		} else if _, err := exec.LookPath(t.path); err == nil {
			continue
		}
		if !seen[t.pkg] {
			seen[t.pkg] = true
			pkgs = append(pkgs, t.pkg)
		}
	}
	return pkgs
}

// EnsurePackages installs the missing packages with apt-get. FRR's
// package starts no daemon in a container without systemd; if it did, the
// lab's FRR would still run on its own files and sockets.
func EnsurePackages(ctx context.Context, out io.Writer) error {
	pkgs := MissingPackages()
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Fprintf(out, "lab: installing %v from Debian\n", pkgs)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	upd := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	upd.Env, upd.Stdout, upd.Stderr = env, out, out
	if err := upd.Run(); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	inst := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...)
	inst.Env, inst.Stdout, inst.Stderr = env, out, out
	if err := inst.Run(); err != nil {
		return fmt.Errorf("apt-get install %v: %w", pkgs, err)
	}
	if left := MissingPackages(); len(left) > 0 {
		return fmt.Errorf("still missing after apt-get install: %v", left)
	}
	return nil
}
