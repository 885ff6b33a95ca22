package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Settings of the Docker harness. Every docker command has a time limit, so that
// a stuck engine fails the test instead of hanging it until go test's timeout.
const (
	// dockerImageTag is the image that buildImage builds from the working tree.
	dockerImageTag = "bundlex:e2e"
	// dockerLabel marks every image, network and container the tests create.
	dockerLabel = "bundlex-e2e=1"
	// dockerCommandTimeout limits one docker command other than a build.
	dockerCommandTimeout = 2 * time.Minute
	// dockerBuildTimeout limits `go build` and `docker build` each. A cold Go
	// build cache compiles the whole module.
	dockerBuildTimeout = 10 * time.Minute
	// containerStopGrace is the wait of `docker stop` between SIGTERM and SIGKILL.
	containerStopGrace = 10 * time.Second
	// nodeConfigPath is the file the image's CMD reads.
	nodeConfigPath = "/etc/bundlex/bundlex.yaml"
	// networkCreateAttempts bounds the retries of newNetwork when another
	// process takes the subnet that Docker offered.
	networkCreateAttempts = 5
	// nodeUID is the numeric user of the image (USER in the Dockerfile).
	nodeUID = 65532
)

// runDocker runs one docker command with a time limit and returns its standard
// output and standard error. The error names the command and contains stderr.
func runDocker(timeout time.Duration, stdin io.Reader, args ...string) (string, string,
	error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	// WaitDelay stops waiting for output pipes held open by a killed child.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("docker %s: timed out after %s: %w", strings.Join(args, " "),
			timeout, ctx.Err())
	} else if err != nil {
		err = fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), stderr.String(), err
}

// mustDocker runs a docker command and fails the test when it fails.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	stdout, _, err := runDocker(dockerCommandTimeout, nil, args...)
	require.NoError(t, err)
	return strings.TrimSpace(stdout)
}

var (
	dockerCheck    sync.Once
	dockerCheckErr error
)

// requireDocker skips the test when no Docker engine responds to `docker info`.
// With CI=true the test fails instead, so that a CI job without Docker cannot
// pass by skipping every container test.
func requireDocker(t *testing.T) {
	t.Helper()
	dockerCheck.Do(func() {
		_, _, dockerCheckErr = runDocker(30*time.Second, nil, "info", "--format",
			"{{.ServerVersion}}")
	})
	if dockerCheckErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no Docker engine responded, and CI=true does not allow skipping "+
			"container tests: %v", dockerCheckErr)
	}
	t.Skipf("skipping container test: no Docker engine responded to `docker info` "+
		"(%v); start Docker to run it", dockerCheckErr)
}

var (
	imageBuild    sync.Once
	imageBuildErr error
)

// buildImage builds the static binary into .build/bundlex and the image from the
// repository's Dockerfile, once per test process, and returns the image tag.
func buildImage(t *testing.T) string {
	t.Helper()
	imageBuild.Do(func() { imageBuildErr = buildImageOnce(t) })
	require.NoError(t, imageBuildErr)
	return dockerImageTag
}

// repoRoot returns the repository's root directory, the image's build context.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok, "runtime.Caller found no source file for the harness")
	return filepath.Dir(filepath.Dir(file))
}

func buildImageOnce(t *testing.T) error {
	root := repoRoot(t)
	// The Dockerfile copies .build/empty as the data directory, so it must
	// exist. .dockerignore leaves out anything inside it.
	if err := os.MkdirAll(filepath.Join(root, ".build", "empty"), 0o755); err != nil {
		return err
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), dockerBuildTimeout)
	defer cancel()
	goBuild := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version=e2e", "-o", filepath.Join(".build", "bundlex"),
		"./cmd/bundlex")
	goBuild.Dir = root
	goBuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := goBuild.CombinedOutput(); err != nil {
		return fmt.Errorf("build the static binary in %s: %w\n%s", root, err, out)
	}
	t.Logf("static binary built in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	stdout, _, err := runDocker(dockerBuildTimeout, nil, "build", "--force-rm",
		"--label", dockerLabel, "--build-arg", "VERSION=e2e", "--tag", dockerImageTag, root)
	if err != nil {
		// The builder prints the failing step on stdout and only the error on
		// stderr, which err contains.
		return fmt.Errorf("%w\nbuild output:\n%s", err, stdout)
	}
	t.Logf("image %s built in %s", dockerImageTag, time.Since(start).Round(time.Millisecond))

	// Every build leaves the previous bundlex:e2e untagged. Removing the untagged
	// ones with the label keeps repeated runs from filling the disk. Docker
	// keeps an image that a container still uses.
	_, _, err = runDocker(dockerCommandTimeout, nil, "image", "prune", "--force",
		"--filter", "label="+dockerLabel)
	return err
}

// dockerNetwork is a private bridge network created with --internal, so its
// containers reach each other and the host but nothing outside. Each node has
// a fixed address, because a cluster node's configuration names its own IP
// address (cluster.gossip_advertise_address) before the container starts.
type dockerNetwork struct {
	name   string
	subnet netip.Prefix
	mu     sync.Mutex
	ips    map[string]netip.Addr
	last   netip.Addr
}

// newNetwork creates a network with a unique name and removes it at cleanup,
// after the containers on it, because cleanups run last-in first-out.
func newNetwork(t *testing.T) *dockerNetwork {
	t.Helper()
	suffix := strings.ToLower(rand.Text()[:8])
	n := &dockerNetwork{name: "bundlex-e2e-" + suffix, ips: map[string]netip.Addr{}}
	var err error
	for range networkCreateAttempts {
		if err = n.create(); err == nil {
			break
		}
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, _, err := runDocker(dockerCommandTimeout, nil, "network", "rm",
			n.name); err != nil {
			t.Errorf("remove network %s: %v", n.name, err)
		}
	})
	// Docker gives the first address to the host's end of the bridge.
	n.last = n.subnet.Addr().Next()
	return n
}

// create lets Docker choose a free subnet, then creates the network again
// with that subnet given explicitly, because --ip requires a subnet that the
// user configured. Another process can take the subnet in between, so the
// caller retries.
func (n *dockerNetwork) create() error {
	var err error
	if n.subnet, err = freeDockerSubnet(n.name); err != nil {
		return err
	}
	_, _, err = runDocker(dockerCommandTimeout, nil, "network", "create", "--driver",
		"bridge", "--internal", "--subnet", n.subnet.String(), "--label", dockerLabel, n.name)
	return err
}

// freeDockerSubnet returns an IPv4 subnet that no Docker network and no host
// route uses. It creates a network called name without a subnet, reads the
// subnet that Docker chose and removes the network. The subnet stays free only
// until another process takes it.
func freeDockerSubnet(name string) (netip.Prefix, error) {
	_, _, err := runDocker(dockerCommandTimeout, nil, "network", "create", "--driver",
		"bridge", "--internal", "--label", dockerLabel, name)
	if err != nil {
		return netip.Prefix{}, err
	}
	out, _, inspectErr := runDocker(dockerCommandTimeout, nil, "network", "inspect",
		"--format", "{{(index .IPAM.Config 0).Subnet}}", name)
	_, _, err = runDocker(dockerCommandTimeout, nil, "network", "rm", name)
	if err = errors.Join(inspectErr, err); err != nil {
		return netip.Prefix{}, err
	}
	subnet, err := netip.ParsePrefix(strings.TrimSpace(out))
	if err != nil || !subnet.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("network %s: docker network inspect returned "+
			"%q, not an IPv4 subnet (%v); the harness needs IPv4 bridge networks", name,
			out, err)
	}
	return subnet, nil
}

// IPFor returns the fixed IPv4 address of the node named name on this
// network, allocating the next free one on first use. runNode assigns it, so
// a test can write it into the configuration of that node and of its peers
// before starting them.
func (n *dockerNetwork) IPFor(name string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ip, ok := n.ips[name]; ok {
		return ip.String()
	}
	n.last = n.last.Next()
	if !n.subnet.Contains(n.last) {
		panic(fmt.Sprintf("network %s: subnet %s has no address left for node %s",
			n.name, n.subnet, name))
	}
	n.ips[name] = n.last
	return n.last.String()
}

// container is one bundlex node running from the test image.
type container struct {
	t       *testing.T
	network *dockerNetwork
	// alias is the host name of the node on its network and its default
	// node_name.
	alias string
	// name is the container name, unique on the engine.
	name string
}

// runNode creates a container from the test image on network and starts
// it. env holds BUNDLEX_ variables and other environment. files maps absolute
// paths in the container to contents. They are copied in before the start,
// owned by the node's user with mode 0600. Without a file at nodeConfigPath the
// node reads an empty one and takes its settings from env.
func runNode(t *testing.T, network *dockerNetwork, name string, env map[string]string,
	files map[string][]byte) *container {
	t.Helper()
	c := &container{t: t, network: network, alias: name, name: network.name + "-" + name}
	args := []string{"create", "--name", c.name, "--label", dockerLabel,
		"--network", network.name, "--network-alias", name, "--ip", network.IPFor(name),
		"--hostname", name}
	for _, key := range slices.Sorted(maps.Keys(env)) {
		args = append(args, "--env", key+"="+env[key])
	}
	args = append(args, buildImage(t))
	mustDocker(t, args...)
	t.Cleanup(c.remove)

	if _, ok := files[nodeConfigPath]; !ok {
		files = maps.Clone(files)
		if files == nil {
			files = map[string][]byte{}
		}
		files[nodeConfigPath] = []byte("# Every setting comes from BUNDLEX_ variables.\n")
	}
	archive, err := tarFiles(files)
	require.NoError(t, err)
	// Without -a the engine keeps the owner from the tar headers, and it creates
	// missing parent directories for root with mode 0755 (checked with Docker
	// Engine 20.10). With -a it looks the image's user up in the host's
	// passwd database instead, which fails for the numeric user.
	_, _, err = runDocker(dockerCommandTimeout, bytes.NewReader(archive), "cp", "-",
		c.name+":/")
	require.NoError(t, err)
	c.Start()
	return c
}

// tarFiles writes files into a tar archive relative to the container's root.
func tarFiles(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("invalid container file path %q: it is relative; "+
				"use an absolute path such as %s", path, nodeConfigPath)
		}
		data := files[path]
		hdr := &tar.Header{Name: strings.TrimPrefix(filepath.Clean(path), "/"),
			Mode: 0o600, Size: int64(len(data)), Uid: nodeUID, Gid: nodeUID,
			ModTime: time.Now(), Typeflag: tar.TypeReg}
		if err := w.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// IP returns the container's fixed address on its network, the same across
// Stop, Start, Disconnect and Connect.
func (c *container) IP() string {
	return c.network.IPFor(c.alias)
}

// Kill sends SIGKILL, as a crash or an OOM kill would, and waits until the
// container has stopped.
func (c *container) Kill() {
	c.t.Helper()
	mustDocker(c.t, "kill", "--signal", "KILL", c.name)
	mustDocker(c.t, "wait", c.name)
}

// Stop sends SIGTERM and waits for the node to shut down, killing it after
// containerStopGrace.
func (c *container) Stop() {
	c.t.Helper()
	mustDocker(c.t, "stop", "--time", strconv.Itoa(int(containerStopGrace.Seconds())),
		c.name)
}

// Start starts the stopped container. Its file system, including the data
// volume, is kept from the previous run.
func (c *container) Start() {
	c.t.Helper()
	mustDocker(c.t, "start", c.name)
}

// Disconnect removes the container from its network, as a network partition
// would. The node keeps running.
func (c *container) Disconnect() {
	c.t.Helper()
	mustDocker(c.t, "network", "disconnect", c.network.name, c.name)
}

// Connect attaches the container to its network again, with the same alias
// and address.
func (c *container) Connect() {
	c.t.Helper()
	mustDocker(c.t, "network", "connect", "--alias", c.alias, "--ip", c.IP(),
		c.network.name, c.name)
}

// Exec runs the bundlex CLI inside the container, where its default socket is
// the node's admin socket. err is non-nil when the command exits non-zero.
func (c *container) Exec(args ...string) (stdout, stderr string, err error) {
	full := append([]string{"exec", c.name, "/bundlex"}, args...)
	return runDocker(dockerCommandTimeout, nil, full...)
}

// Logs returns what the node wrote to stdout and stderr, interleaved.
func (c *container) Logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), dockerCommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", c.name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("docker logs %s: %v\n%s", c.name, err, out)
	}
	return string(out)
}

// remove deletes the container with its anonymous data volume. The log is
// printed first when the test failed.
func (c *container) remove() {
	if c.t.Failed() {
		c.t.Logf("log of container %s:\n%s", c.name, c.Logs())
	}
	if _, _, err := runDocker(dockerCommandTimeout, nil, "rm", "--force", "--volumes",
		c.name); err != nil {
		c.t.Errorf("remove container %s: %v", c.name, err)
	}
}

// containerAddr returns the container's host:port, which the test process
// reaches directly: on Linux the host routes to the bridge of an --internal
// network, which only lacks a route to the outside.
func containerAddr(c *container, port int) string {
	return net.JoinHostPort(c.IP(), strconv.Itoa(port))
}

// containerURL returns the https URL of path on a container's port, such as
// the bundle endpoint. Use containerAddr for plain http.
func containerURL(c *container, port int, path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "https://" + containerAddr(c, port) + path
}

// WaitHealthy waits until `bundlex healthcheck` succeeds inside the container,
// which means the node is ready, and returns how long that took. It fails at
// once when the container stops, because a node that exited never becomes ready.
func (c *container) WaitHealthy(timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		_, _, err := c.Exec("healthcheck")
		if err == nil {
			return time.Since(start)
		}
		state := mustDocker(c.t, "inspect", "--format",
			"{{.State.Status}} (exit code {{.State.ExitCode}})", c.name)
		if !strings.HasPrefix(state, "running") {
			c.t.Fatalf("container %s is %s instead of becoming ready; its log is "+
				"printed at cleanup", c.name, state)
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("container %s not ready after %s: %v", c.name, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
