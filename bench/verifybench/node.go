package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/bundlex/bundlex/internal/admin"
)

const (
	// trustDomain is the benchmark node's trust domain.
	trustDomain = "bench.test"
	// tokenTTL is the lifetime of every minted token. It covers a long run, so no
	// token expires while it is measured.
	tokenTTL = 2 * time.Hour
	// readyTimeout bounds the wait for the node to elect itself and publish its bundle.
	readyTimeout = 60 * time.Second
	// adminTimeout bounds each admin API request.
	adminTimeout = 30 * time.Second
	// logTailBytes is how much of the node's log an error report includes.
	logTailBytes = 4 << 10
)

// node is one `bundlex server` process with the verify API and the Workload API on.
type node struct {
	dir            string
	cmd            *exec.Cmd
	exited         chan struct{}
	logPath        string
	adminSocket    string
	workloadSocket string
	verifyAddr     string
	admin          *admin.Client
	// bundle is the node's local bundle, read once it is ready.
	bundle *spiffebundle.Bundle
}

// buildBundlex builds ./cmd/bundlex of the module that contains this program into
// dir and returns the binary's path.
func buildBundlex(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bundlex")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/bundlex")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("verifybench: go build ./cmd/bundlex in %s failed: %v\n%s; "+
			"pass a built binary with -bundlex", root, err, out)
	}
	return path, nil
}

// moduleRoot returns the directory of the bundlex module, which `go env GOMOD`
// finds from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("verifybench: go env GOMOD failed: %w; run from the bundlex "+
			"module or pass a built binary with -bundlex", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("verifybench: the working directory is outside a Go module; " +
			"run from the bundlex module or pass a built binary with -bundlex")
	}
	return filepath.Dir(gomod), nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("verifybench: find a free port on 127.0.0.1: %w", err)
	}
	defer listener.Close()
	return listener.Addr().String(), nil
}

// startNode writes the configuration of a single-node cluster into dir, starts
// binary with it and waits until the node is ready.
func startNode(ctx context.Context, binary, dir string) (*node, error) {
	n := &node{
		dir:            dir,
		logPath:        filepath.Join(dir, "node.log"),
		adminSocket:    filepath.Join(dir, "data", "admin.sock"),
		workloadSocket: filepath.Join(dir, "workload.sock"),
	}
	addrs := make([]string, 5)
	for i := range addrs {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = addr
	}
	n.verifyAddr = addrs[0]
	// The JWT key lives longer than the tokens, as the configuration requires, and
	// no key rotates during a run: a new bundle would make every cached
	// verification stale in the middle of a measurement.
	config := fmt.Sprintf(`trust_domain: %s
node_name: bench
data_dir: %s
log_level: info
bundle_endpoint:
  address: %s
health:
  address: %s
cluster:
  raft_address: %s
  gossip_address: %s
verify:
  address: %s
workload_api:
  socket_path: %s
authority:
  jwt_svid_max_ttl: %s
  jwt_key_ttl: 48h
`, trustDomain, filepath.Join(dir, "data"), addrs[1], addrs[2], addrs[3], addrs[4],
		n.verifyAddr, n.workloadSocket, tokenTTL)
	configPath := filepath.Join(dir, "bundlex.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("verifybench: write %s: %w", configPath, err)
	}
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return nil, fmt.Errorf("verifybench: create %s: %w", n.logPath, err)
	}
	n.cmd = exec.Command(binary, "server", "--config", configPath)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("verifybench: start %s: %w", binary, err)
	}
	n.exited = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()
	n.admin = admin.NewClient(n.adminSocket, adminTimeout)
	if err := n.waitReady(ctx); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// waitReady polls the admin API until the node reports ready and reads its bundle.
func (n *node) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	lastErr := errors.New("no status yet")
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("verifybench: the node exited before it was ready:\n%s",
				n.logTail())
		case <-ctx.Done():
			return fmt.Errorf("verifybench: the node was not ready after %s (%v):\n%s",
				readyTimeout, lastErr, n.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		status, err := n.admin.Status(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		if !status.Ready {
			lastErr = errors.New(status.ReadyError)
			continue
		}
		local, err := n.admin.LocalBundle(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		td := spiffeid.RequireTrustDomainFromString(trustDomain)
		if n.bundle, err = spiffebundle.Parse(td, local.Document); err != nil {
			return fmt.Errorf("verifybench: parse the node's bundle: %w", err)
		}
		return nil
	}
}

// tlsConfig authenticates the verify API as a consumer does: its certificate must
// chain to the node's bundle and name a SPIFFE ID of the node's trust domain.
func (n *node) tlsConfig() *tls.Config {
	return tlsconfig.TLSClientConfig(n.bundle.X509Bundle(),
		tlsconfig.AuthorizeMemberOf(n.bundle.TrustDomain()))
}

// cpuTime returns the user and system CPU time of the node's process so far.
func (n *node) cpuTime() (time.Duration, error) {
	return processCPUTime(n.cmd.Process.Pid)
}

// stop interrupts the node, as Ctrl-C does, and kills it when it has not exited
// after stopTimeout.
func (n *node) stop() {
	const stopTimeout = 10 * time.Second
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
	case <-time.After(stopTimeout):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// logTail returns the end of the node's log, for error reports.
func (n *node) logTail() string {
	data, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
	}
	return string(data)
}
