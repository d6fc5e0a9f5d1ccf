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
	parts := fs.String("parts", "", "parts to run, comma-separated: create, fail, scale (default all)")
	_ = fs.Parse(args)
	for _, p := range strings.Split(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "create", "fail", "scale":
			o.Parts = append(o.Parts, p)
		case "":
		default:
			return fmt.Errorf("unknown part %q (create, fail, scale)", p)
		}
	}
	l, families, err := attachForBench(*dir, *repo, *fams)
	if err != nil {
		return err
	}
	o.Families, o.Log = families, os.Stderr
	_, err = l.BenchBGP(ctx, o, os.Stdout)
	return err
}

// parseFamilies parses a comma-separated list of address families.
func parseFamilies(list string) ([]lab.Family, error) {
	var out []lab.Family
	for _, f := range strings.Split(list, ",") {
		switch f = strings.TrimSpace(f); lab.Family(f) {
		case lab.IPv4, lab.IPv6:
			out = append(out, lab.Family(f))
		case "":
		default:
			return nil, fmt.Errorf("unknown family %q", f)
		}
	}
	return out, nil
}

// attachForBench attaches to the lab in dir for a benchmark, its progress
// on standard error, and parses its families.
func attachForBench(dir, repo, families string) (*lab.Lab, []lab.Family, error) {
	fams, err := parseFamilies(families)
	if err != nil {
		return nil, nil, err
	}
	d, _, err := resolve(dir, repo)
	if err != nil {
		return nil, nil, err
	}
	l, err := lab.Attach(d)
	if err != nil {
		return nil, nil, err
	}
	l.SetLog(os.Stderr)
	ctrllog.SetLogger(logr.Discard()) // the bench's caches log nothing useful
	return l, fams, nil
}
