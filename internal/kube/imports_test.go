package kube_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// guardedPackages must not import controller-runtime's client and cache,
// client-go's typed clientset, or API groups other than core/v1 and
// discovery/v1: the speaker's memory depends on it (every node runs
// one, and each API group costs its code pages and its init).
var guardedPackages = []string{
	"github.com/herald-lb/herald/internal/kube",
	"github.com/herald-lb/herald/speaker",
}

// forbiddenImport says why a package must not be among the guarded
// packages' dependencies, or "" when it may be.
func forbiddenImport(pkg string) string {
	switch {
	case strings.HasPrefix(pkg, "sigs.k8s.io/controller-runtime"):
		return "controller-runtime"
	case pkg == "k8s.io/client-go/kubernetes" || strings.HasPrefix(pkg, "k8s.io/client-go/kubernetes/"):
		return "client-go's typed clientset or its scheme"
	case strings.HasPrefix(pkg, "k8s.io/api/") && pkg != "k8s.io/api/core/v1" && pkg != "k8s.io/api/discovery/v1":
		return "an API group other than core/v1 and discovery/v1"
	case pkg == "k8s.io/client-go/tools/record" || strings.HasPrefix(pkg, "github.com/google/gnostic-models"):
		return "client-go's event recorder and the OpenAPI models its strategic merge patches need"
	}
	return ""
}

func TestForbiddenImport(t *testing.T) {
	for _, tc := range []struct {
		pkg    string
		banned bool
	}{
		{"sigs.k8s.io/controller-runtime", true},
		{"sigs.k8s.io/controller-runtime/pkg/client", true},
		{"k8s.io/client-go/kubernetes", true},
		{"k8s.io/client-go/kubernetes/scheme", true},
		{"k8s.io/client-go/kubernetes/typed/core/v1", true},
		{"k8s.io/api/apps/v1", true},
		{"k8s.io/api/discovery/v1beta1", true},
		{"k8s.io/api/core/v1", false},
		{"k8s.io/api/discovery/v1", false},
		{"k8s.io/client-go/rest", false},
		{"k8s.io/client-go/tools/cache", false},
		{"k8s.io/client-go/tools/record", true},
		{"github.com/google/gnostic-models/openapiv2", true},
		{"k8s.io/client-go/tools/reference", false},
		{"k8s.io/apimachinery/pkg/runtime", false},
		{"sigs.k8s.io/json", false},
	} {
		if got := forbiddenImport(tc.pkg) != ""; got != tc.banned {
			t.Errorf("forbiddenImport(%q) banned = %v, want %v", tc.pkg, got, tc.banned)
		}
	}
}

// TestImportGuard lists the guarded packages' dependencies with the go
// tool and fails on a forbidden one, naming the packages that import it.
func TestImportGuard(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		// go test puts GOROOT/bin first in the test's PATH: a missing go
		// tool is a broken set-up, not a reason to skip.
		t.Fatalf("the go tool is not in PATH: %v", err)
	}
	args := append([]string{"list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, guardedPackages...)
	out, err := exec.CommandContext(t.Context(), goTool, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	importers := map[string][]string{}
	var deps []string
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		deps = append(deps, fields[0])
		for _, imp := range fields[1:] {
			importers[imp] = append(importers[imp], fields[0])
		}
	}
	if len(deps) < len(guardedPackages) {
		t.Fatalf("go list printed %d packages, want at least %d:\n%s", len(deps), len(guardedPackages), out)
	}
	for _, pkg := range guardedPackages {
		if !slices.Contains(deps, pkg) {
			t.Errorf("go list did not list %s itself", pkg)
		}
	}
	for _, dep := range deps {
		if why := forbiddenImport(dep); why != "" {
			t.Errorf("%s depends on %s (%s), imported by %v", strings.Join(guardedPackages, ", "), dep, why, importers[dep])
		}
	}
}
