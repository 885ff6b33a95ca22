package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var spireBuild struct {
	once sync.Once
	path string
	err  error
}

// spireServerBinary returns the path of spire-server: $BUNDLEX_SPIRE_SERVER when
// set, otherwise a binary built once per test process from the e2e/spire module.
func spireServerBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv(spireBinaryEnv)
	if path == "" {
		spireBuild.once.Do(func() {
			started := time.Now()
			spireBuild.path, spireBuild.err = buildSPIREServer()
			if spireBuild.err == nil {
				t.Logf("built SPIRE Server in %s", time.Since(started).Round(time.Millisecond))
				spireBuild.err = checkSPIREVersion(spireBuild.path)
			}
		})
		if spireBuild.err != nil {
			t.Fatalf("%v", spireBuild.err)
		}
		return spireBuild.path
	}
	if err := checkSPIREVersion(path); err != nil {
		t.Fatalf("%v (from $%s)", err, spireBinaryEnv)
	}
	return path
}

// buildSPIREServer builds spire-server into e2e/spire/bin. It writes to a file
// named after this process and renames it, so that test processes building at
// the same time never run a half-written binary.
func buildSPIREServer() (string, error) {
	moduleDir, err := findSPIREModule()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("e2e: no go command on PATH to build SPIRE Server: %w; "+
			"install Go or set %s to a spire-server %s binary", err, spireBinaryEnv, spireVersion)
	}
	binDir := filepath.Join(moduleDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("e2e: failed to create %s: %w", binDir, err)
	}
	tmpPath := filepath.Join(binDir, fmt.Sprintf("spire-server.%d.tmp", os.Getpid()))
	cmd := exec.Command(goTool, "build", "-C", moduleDir, "-o", tmpPath, spireServerPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmpPath)
		return "", fmt.Errorf("e2e: %s failed: %w; fix the build or set %s to a "+
			"spire-server %s binary. Output:\n%s", cmd, err, spireBinaryEnv, spireVersion, out)
	}
	path := filepath.Join(binDir, "spire-server")
	if err := os.Rename(tmpPath, path); err != nil {
		return "", fmt.Errorf("e2e: failed to move built SPIRE Server to %s: %w", path, err)
	}
	return path, nil
}

// findSPIREModule walks up from the working directory, which go test sets to the
// package directory, to the folder that contains e2e/spire/go.mod.
func findSPIREModule() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("e2e: failed to get working directory: %w", err)
	}
	for {
		candidate := filepath.Join(dir, "e2e", "spire")
		if _, err := os.Stat(filepath.Join(candidate, "go.mod")); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("e2e: no e2e/spire/go.mod above the working directory; "+
				"run the tests inside the bundlex repository or set %s", spireBinaryEnv)
		}
		dir = parent
	}
}

// checkSPIREVersion runs `spire-server --version`. A build from the module
// source prints "1.13.3-dev-unk" and a release binary prints "1.13.3".
func checkSPIREVersion(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), spireCLITimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("e2e: failed to run %s --version: %w; output: %s", path, err, out)
	}
	version := strings.TrimSpace(string(out))
	if version != spireVersion && !strings.HasPrefix(version, spireVersion+"-") {
		return fmt.Errorf("e2e: %s is SPIRE Server %q, but the tests need %s", path, version,
			spireVersion)
	}
	return nil
}
