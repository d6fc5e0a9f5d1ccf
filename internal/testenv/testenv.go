// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest, with the binaries the Makefile builds into bin/) with Herald's
// CRDs installed from manifests/, for integration tests.
//
// Tests call Start from TestMain and Require from each test. Without the
// binaries (KUBEBUILDER_ASSETS unset) tests skip with a clear message,
// unless HERALD_REQUIRE_ENVTEST=1 (as `make test` sets), which turns the
// missing binaries into a failure.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running API server.
type Env struct {
	Config *rest.Config
	env    *envtest.Environment
}

var (
	current  *Env
	startErr error
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Start starts the API server for the package's tests and returns a stop
// function. It records, rather than returns, a missing-binaries condition
// so that Require can skip or fail each test.
func Start() (stop func()) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		startErr = fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make test` (it builds kube-apiserver and etcd into bin/)")
		return func() {}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "manifests", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// Dual-stack Service CIDRs, so Services may ask for both families.
	env.ControlPlane.GetAPIServer().Configure().
		Set("service-cluster-ip-range", "10.96.0.0/16,fd00:96::/112")
	cfg, err := env.Start()
	if err != nil {
		startErr = fmt.Errorf("start kube-apiserver and etcd: %w", err)
		return func() {}
	}
	current = &Env{Config: cfg, env: env}
	return func() { _ = env.Stop() }
}

// Require returns the running environment, or skips (fails when
// HERALD_REQUIRE_ENVTEST=1) the test when there is none.
func Require(t testing.TB) *Env {
	t.Helper()
	if current != nil {
		return current
	}
	if os.Getenv("HERALD_REQUIRE_ENVTEST") == "1" {
		t.Fatalf("integration test cannot run: %v", startErr)
	}
	t.Skipf("integration test skipped: %v", startErr)
	return nil
}

// Kubeconfig writes a kubeconfig file for cfg (the admin's, or any other
// credentials) into a test's temporary directory and returns its path, for
// tools such as bin/kubectl.
func Kubeconfig(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return path
}
