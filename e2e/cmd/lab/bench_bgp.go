package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/e2e/lab"
)

// benchBGP runs `lab bench bgp [flags]`.
func benchBGP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lab bench bgp", flag.ExitOnError)
	dir, repo := dirFlags(fs)
	var o lab.BGPBenchOptions
	fs.IntVar(&o.Services, "services", 1000, "filler Services per family for the scale figures")
	fs.IntVar(&o.Rounds, "rounds", 10, "rounds per timed figure and family")
	fs.IntVar(&o.Workers, "workers", 16, "concurrent creators")
	fams := fs.String("families", "ipv4,ipv6", "families")
	fs.BoolVar(&o.KeepServices, "keep", false, "keep the bench's Services at the end")
	_ = fs.Parse(args)
	for _, f := range strings.Split(*fams, ",") {
		switch f = strings.TrimSpace(f); lab.Family(f) {
		case lab.IPv4, lab.IPv6:
			o.Families = append(o.Families, lab.Family(f))
		case "":
		default:
			return fmt.Errorf("unknown family %q", f)
		}
	}
	d, _, err := resolve(*dir, *repo)
	if err != nil {
		return err
	}
	l, err := lab.Attach(d)
	if err != nil {
		return err
	}
	l.SetLog(os.Stderr)
	o.Log = os.Stderr
	ctrllog.SetLogger(logr.Discard())
	_, err = l.BenchBGP(ctx, o, os.Stdout)
	return err
}
