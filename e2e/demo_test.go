package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/verify"
)

// demoBudget is how long `bundlex demo` may take from start to exit, nodes'
// start and stop included.
const demoBudget = 15 * time.Second

func TestDemoCommand(t *testing.T) {
	binary := bundlexBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "demo")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	started := time.Now()
	err := cmd.Run()
	elapsed := time.Since(started)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	t.Logf("bundlex demo exited after %s:\n%s", elapsed.Round(time.Millisecond), stdout.String())

	out := stdout.String()
	for _, want := range []string{
		"1. Started three single-node clusters in ",
		"   org A  org-a.test  bundle endpoint https://127.0.0.1:",
		"   org B  org-b.test  bundle endpoint https://127.0.0.1:",
		"   org X  org-x.test  bundle endpoint https://127.0.0.1:",
		"2. Federated org A and org B both ways over https_spiffe",
		"3. Each fetched the other's bundle from its endpoint",
		"4. Org A minted a JWT-SVID for spiffe://org-a.test/agents/planner,",
		"5. Org B's verify API accepted it: HTTP 200, spiffe_id " +
			"spiffe://org-a.test/agents/planner.",
		"6. Org X minted a token for spiffe://org-x.test/agents/planner;\n" +
			"   org B rejected it: HTTP 401 unknown_trust_domain:\n",
		"Done in ",
	} {
		require.Contains(t, out, want)
	}
	require.Empty(t, stderr.String(), "the nodes log only errors by default")
	require.Less(t, elapsed, demoBudget)
}

// demoSocketLine is the line of `demo --keep` that names a node's admin socket.
var demoSocketLine = regexp.MustCompile(`^  (org [ABX]) --socket (\S+) +bundle endpoint (\S+)$`)

func TestDemoKeepServesUntilInterrupt(t *testing.T) {
	cmd := exec.Command(bundlexBinary(t), "demo", "--keep")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 256)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()

	// Collect the access lines, up to the list of commands to try.
	sockets := map[string]string{}
	var verifyURL string
	timeout := time.After(time.Minute)
	for done := false; !done; {
		select {
		case line, open := <-lines:
			require.True(t, open, "demo exited early; stderr:\n%s", stderr.String())
			if m := demoSocketLine.FindStringSubmatch(line); m != nil {
				sockets[m[1]] = m[2]
			}
			if rest, ok := strings.CutPrefix(line, "  org B verify API "); ok {
				verifyURL = rest
			}
			done = line == "Try:"
		case <-timeout:
			t.Fatalf("demo printed no access lines within a minute; stderr:\n%s",
				stderr.String())
		}
	}
	require.Len(t, sockets, 3)
	require.True(t, strings.HasSuffix(verifyURL, verify.JWTSVIDPath), verifyURL)

	// The kept nodes serve the printed sockets and URL.
	orgA := &bxNode{t: t, socket: sockets["org A"]}
	orgB := &bxNode{t: t, socket: sockets["org B"]}
	var rel admin.Relationship
	require.NoError(t, json.Unmarshal([]byte(orgB.cli("--output", "json", "federation",
		"show", "--trust-domain", "org-a.test")), &rel))
	require.Equal(t, "fetched", rel.Status.BundleSource)
	svid := mintJWT(t, orgA, plannerID, "org-b", time.Minute)
	parsed, err := url.Parse(verifyURL)
	require.NoError(t, err)
	api := verifyClientFor(t, parseStored(t, localBundle(t, orgB)),
		"spiffe://org-b.test/bundlex", parsed.Host)
	status, resp := api.jwt(svid.Token, "org-b")
	require.Equal(t, 200, status, "error: %+v", resp.Error)
	require.Equal(t, plannerID, resp.SPIFFEID)

	// Ctrl-C stops the nodes, removes their data and exits 0.
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	var tail []string
	timeout = time.After(30 * time.Second)
	for open := true; open; {
		select {
		case line, ok := <-lines:
			if ok {
				tail = append(tail, line)
			}
			open = ok
		case <-timeout:
			t.Fatalf("demo still running 30s after SIGINT; output since: %q", tail)
		}
	}
	require.NoError(t, cmd.Wait(), "stderr:\n%s", stderr.String())
	require.Contains(t, tail, "Stopping the nodes and removing their data.")
	for label, socket := range sockets {
		_, err := os.Stat(filepath.Dir(socket))
		require.True(t, os.IsNotExist(err), "data directory of %s still exists: %v", label, err)
	}
}
