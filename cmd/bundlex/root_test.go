package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// createArgs are valid `federation create` flags that a case changes one at a time.
func createArgs(extra ...string) []string {
	args := []string{"federation", "create", "--trust-domain", "org-b.test",
		"--bundle-endpoint-url", "https://org-b.test/"}
	return append(args, extra...)
}

// TestFlagValueErrorsPointToHelp checks errors in flag values: the message and a
// pointer to the command's help, without the usage, which would push the
// message out of sight.
func TestFlagValueErrorsPointToHelp(t *testing.T) {
	node, socket := startFakeNode(t)
	spiffeArgs := []string{"--profile", "https_spiffe", "--endpoint-spiffe-id",
		"spiffe://org-b.test/bundlex"}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown output format", []string{"--output", "yaml", "bundle", "show"},
			`invalid --output "yaml": use table or json`},
		{"zero timeout", []string{"--timeout", "0s", "bundle", "show"},
			"invalid --timeout 0s: pass a positive duration such as 30s"},
		{"bad show format", []string{"bundle", "show", "--format", "der"},
			`invalid --format "der": use spiffe or pem`},
		{"bad list format", []string{"bundle", "list", "--format", "jwks"},
			`invalid --format "jwks": use spiffe or pem`},
		{"set without id", []string{"bundle", "set", "--path", "-"},
			"missing --id: pass the trust domain, such as --id org-b.test"},
		{"set without path", []string{"bundle", "set", "--id", "org-b.test"},
			"missing --path: pass the bundle file, or - to read standard input"},
		{"set with invalid id", []string{"bundle", "set", "--id", "Org_B", "--path", "-"},
			`invalid --id: bundle: invalid trust domain "Org_B"`},
		{"delete without id", []string{"bundle", "delete"},
			"missing --id: pass the trust domain"},
		{"create without url", []string{"federation", "create", "--trust-domain",
			"org-b.test", "--profile", "https_web"}, "missing --bundle-endpoint-url: pass " +
			"the HTTPS URL of the peer's bundle endpoint, such as https://org-b.test:8443/"},
		{"create without profile", createArgs(), "missing --profile: pass https_spiffe " +
			"or https_web, the profile the peer's endpoint serves"},
		{"create with unknown profile", createArgs("--profile", "https"),
			`invalid --profile "https": use https_spiffe or https_web`},
		{"spiffe profile without id", createArgs("--profile", "https_spiffe"),
			"missing --endpoint-spiffe-id: --profile https_spiffe needs the SPIFFE ID of " +
				"the endpoint's X509-SVID, such as spiffe://org-b.test/bundlex"},
		{"web profile with id", createArgs("--profile", "https_web",
			"--endpoint-spiffe-id", "spiffe://org-b.test/x"), "--endpoint-spiffe-id " +
			"applies only to --profile https_spiffe; remove it for https_web"},
		{"spiffe profile with CA file", createArgs(append(spiffeArgs, "--ca-file",
			"ca.pem")...), "--ca-file applies only to --profile https_web; remove it for " +
			"https_spiffe"},
		{"invalid endpoint id", createArgs("--profile", "https_spiffe",
			"--endpoint-spiffe-id", "org-b.test/bundlex"),
			`invalid --endpoint-spiffe-id: bundle: invalid SPIFFE ID "org-b.test/bundlex"`},
		{"http endpoint url", []string{"federation", "create", "--trust-domain",
			"org-b.test", "--bundle-endpoint-url", "http://org-b.test/", "--profile",
			"https_web"}, `invalid --bundle-endpoint-url "http://org-b.test/": the scheme ` +
			"must be https, such as https://org-b.test:8443/"},
		{"endpoint url with userinfo", []string{"federation", "create", "--trust-domain",
			"org-b.test", "--bundle-endpoint-url", "https://u:p@org-b.test/", "--profile",
			"https_web"}, `invalid --bundle-endpoint-url "https://u:p@org-b.test/": a ` +
			"bundle endpoint URL carries no user information; remove the part before '@'"},
		{"prefix of another domain", createArgs("--profile", "https_web",
			"--allowed-id-prefix", "spiffe://org-c.test/ns"), `invalid --allowed-id-prefix ` +
			`"spiffe://org-c.test/ns": it is not in trust domain org-b.test; start it with ` +
			"spiffe://org-b.test/"},
		{"empty prefix", createArgs("--profile", "https_web", "--allowed-id-prefix", ""),
			`invalid --allowed-id-prefix "": it is empty; use a SPIFFE ID of org-b.test, ` +
				"such as spiffe://org-b.test/agents/"},
		{"empty prefix on update", []string{"federation", "update", "--trust-domain",
			"org-b.test", "--allowed-id-prefix", ""}, `invalid --allowed-id-prefix "": it ` +
			"is empty; use a SPIFFE ID of org-b.test, such as spiffe://org-b.test/agents/"},
		{"stray comma", createArgs("--profile", "https_web", "--allowed-id-prefixes",
			"spiffe://org-b.test/a,"), `invalid --allowed-id-prefix "": it is empty`},
		{"prefix with empty segment", createArgs("--profile", "https_web",
			"--allowed-id-prefix", "spiffe://org-b.test/agents//x"), `invalid ` +
			`--allowed-id-prefix "spiffe://org-b.test/agents//x": path cannot contain ` +
			"empty segments; use a SPIFFE ID of org-b.test, optionally ending in /, such " +
			"as spiffe://org-b.test/agents/"},
		{"prefix with query", createArgs("--profile", "https_web",
			"--allowed-id-prefix", "spiffe://org-b.test/a?b"), `invalid --allowed-id-prefix ` +
			`"spiffe://org-b.test/a?b": path segment characters are limited to letters`},
		{"bundle format without path", createArgs("--profile", "https_web",
			"--bundle-format", "pem"), "--bundle-format describes --bundle-path; pass " +
			"--bundle-path too"},
		{"bad bundle format", createArgs("--profile", "https_web", "--bundle-path", "b",
			"--bundle-format", "x509"), `invalid --bundle-format "x509": use spiffe or pem`},
		{"two inputs from stdin", createArgs("--profile", "https_web", "--bundle-path", "-",
			"--ca-file", "-"), "--bundle-path and --ca-file cannot both read standard " +
			"input; pass a file for one of them"},
		{"update with nothing", []string{"federation", "update", "--trust-domain",
			"org-b.test"}, "nothing to update for org-b.test: pass at least one of " +
			"--bundle-endpoint-url, --profile, --endpoint-spiffe-id, --bundle-path, " +
			"--ca-file, --allowed-id-prefix"},
		{"show without trust domain", []string{"federation", "show"},
			"missing --trust-domain: pass the trust domain, such as --trust-domain org-b.test"},
		{"mint without audience", []string{"jwt", "mint", "--spiffe-id",
			"spiffe://example.org/w"}, "missing --audience: pass at least one audience of " +
			"the token, such as --audience my-service"},
		{"mint with fractional ttl", []string{"x509", "mint", "--spiffe-id",
			"spiffe://example.org/w", "--ttl", "1500ms"}, "invalid --ttl 1.5s: pass a " +
			"whole number of seconds, such as 1h, or 0 for the node's default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, socket, "", tt.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "Error: "+tt.want), stderr)
			require.Regexp(t, `\nRun 'bundlex [a-z0-9 ]+ --help' for the flags of this `+
				`command\.\n$`, stderr)
			require.NotContains(t, stderr, "Usage:")
		})
	}
	require.Equal(t, 0, node.callCount(), "flag errors must not reach the node")
}

// TestCommandLineErrorsPrintUsage checks errors in the shape of the command
// line, which print the command's usage.
func TestCommandLineErrorsPrintUsage(t *testing.T) {
	node, socket := startFakeNode(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"bundle", "show", "--bogus"}, "unknown flag: --bogus"},
		{"flag of wrong type", []string{"x509", "mint", "--ttl", "soon"},
			`invalid argument "soon" for "--ttl" flag`},
		{"unknown subcommand", []string{"bundle", "lst"}, `unknown command "lst" for ` +
			`"bundlex bundle"; run 'bundlex bundle --help' to list the commands`},
		{"positional argument", []string{"bundle", "show", "org-b.test"},
			`unexpected argument "org-b.test": "bundlex bundle show" takes only flags`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, socket, "", tt.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "Error: "+tt.want), stderr)
			require.Contains(t, stderr, "\nUsage:\n  bundlex ")
		})
	}
	require.Equal(t, 0, node.callCount(), "flag errors must not reach the node")
}

func TestMissingSocketError(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "absent.sock")

	stdout, stderr, code := runCLI(t, socket, "", "federation", "list")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: admin: cannot reach the node at "+socket+": dial unix "+socket+
		": connect: no such file or directory; is `bundlex server` running, and is "+
		"--socket right?\n", stderr)
}

func TestSocketFromEnvironment(t *testing.T) {
	node, socket := startFakeNode(t)
	t.Setenv("BUNDLEX_ADMIN_SOCKET_PATH", socket)
	t.Setenv("BUNDLEX_DATA_DIR", "/nonexistent")

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bundle", "show", "--format", "pem"},
		strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, node.local.PEM, stdout.String())
}

func TestDefaultSocketPath(t *testing.T) {
	tests := []struct {
		name    string
		socket  string
		dataDir string
		want    string
	}{
		{"socket variable wins", "/run/bx.sock", "/data", "/run/bx.sock"},
		{"data dir variable", "", "/data", "/data/admin.sock"},
		{"built-in data dir", "", "", "/var/lib/bundlex/admin.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BUNDLEX_ADMIN_SOCKET_PATH", tt.socket)
			t.Setenv("BUNDLEX_DATA_DIR", tt.dataDir)
			require.Equal(t, tt.want, defaultSocketPath())
		})
	}
}

func TestTimeoutFlag(t *testing.T) {
	node, socket := startFakeNode(t)
	node.block = make(chan struct{})
	t.Cleanup(func() { close(node.block) })

	stdout, stderr, code := runCLI(t, socket, "", "--timeout", "200ms", "bundle", "show")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "Error: admin: GET /v1/bundle on "+socket+
		" timed out (client timeout 200ms)")
	require.Contains(t, stderr, "raise --timeout or check the node's log\n")
}

func TestHealthcheck(t *testing.T) {
	node, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "healthcheck")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Server is healthy.\n", stdout)

	node.status.Ready = false
	node.status.ReadyError = "no Raft leader for 12s"
	stdout, stderr, code = runCLI(t, socket, "", "healthcheck")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: server is unhealthy: node node-1 is not ready: "+
		"no Raft leader for 12s\n", stderr)

	stdout, stderr, code = runCLI(t, socket, "", "healthcheck", "--shallow")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Server is healthy.\n", stdout)

	stdout, _, code = runCLI(t, socket, "", "--output", "json", "healthcheck")
	require.Equal(t, 1, code)
	var got admin.Status
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, node.status, got)
}

func TestHealthcheckShallowWithoutNode(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "absent.sock")

	stdout, stderr, code := runCLI(t, socket, "", "healthcheck", "--shallow")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.True(t, strings.HasPrefix(stderr,
		"Error: server is unhealthy: admin: cannot reach the node at "+socket), stderr)
}

func TestVersion(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "unused.sock")
	platform := runtime.GOOS + "/" + runtime.GOARCH

	stdout, stderr, code := runCLI(t, socket, "", "version")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "bundlex dev ("+runtime.Version()+", "+platform+")\n", stdout)

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "version")
	require.Equal(t, 0, code, stderr)
	require.JSONEq(t, `{"version": "dev", "go_version": "`+runtime.Version()+
		`", "platform": "`+platform+`"}`, stdout)
}

func TestAuthorityRotate(t *testing.T) {
	_, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "authority", "rotate")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Prepared new signing keys for example.org. Local bundle: "+
		"sequence 4, 2 X.509 authorities, 2 JWT keys.\n", stdout)

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "authority", "rotate")
	require.Equal(t, 0, code, stderr)
	var got admin.Bundle
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, uint64(5), got.Sequence)
	require.Equal(t, 3, got.X509Keys)
}

func TestX509MintWritesFiles(t *testing.T) {
	_, socket := startFakeNode(t)
	dir := t.TempDir()

	stdout, stderr, code := runCLI(t, socket, "", "x509", "mint", "--spiffe-id",
		"spiffe://example.org/w", "--ttl", "1h", "--write", dir)
	require.Equal(t, 0, code, stderr)
	svidPath := filepath.Join(dir, "svid.pem")
	keyPath := filepath.Join(dir, "key.pem")
	require.Equal(t, "X509-SVID written to "+svidPath+"\nPrivate key written to "+
		keyPath+"\nRoot CAs written to "+filepath.Join(dir, "bundle.pem")+"\n", stdout)

	certs, err := os.ReadFile(svidPath)
	require.NoError(t, err)
	require.Equal(t, "CERTS FOR spiffe://example.org/w\n", string(certs))
	info, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestX509MintPrints(t *testing.T) {
	_, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "x509", "mint", "--spiffe-id",
		"spiffe://example.org/w")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "X509-SVID:\nCERTS FOR spiffe://example.org/w\n\n"+
		"Private key:\nKEY FOR spiffe://example.org/w\n", stdout)
}

func TestJWTMint(t *testing.T) {
	_, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "jwt", "mint", "--spiffe-id",
		"spiffe://example.org/w", "--audience", "a", "--audience", "b", "--ttl", "5m")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "token:spiffe://example.org/w:a,b\n", stdout)

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "jwt", "mint",
		"--spiffe-id", "spiffe://example.org/w", "--audience", "a", "--ttl", "5m")
	require.Equal(t, 0, code, stderr)
	var got admin.JWTSVID
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, fakeNow.Add(300e9), got.ExpiresAt)
}
