package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bundlex/bundlex/internal/admin"
)

// indentJSON returns doc as `bundle show` prints it.
func indentJSON(t *testing.T, doc []byte) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, doc, "", "  "))
	return buf.String() + "\n"
}

func TestBundleShowFormats(t *testing.T) {
	node, socket := startFakeNode(t)

	t.Run("spiffe prints the document", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, socket, "", "bundle", "show")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, indentJSON(t, node.local.Document), stdout)
	})
	t.Run("pem prints the certificates", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, socket, "", "bundle", "show", "--format", "pem")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, node.local.PEM, stdout)
		require.Contains(t, stdout, "-----BEGIN CERTIFICATE-----")
	})
	t.Run("json prints the API object", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, socket, "", "--output", "json", "bundle", "show")
		require.Equal(t, 0, code, stderr)
		var got admin.Bundle
		require.NoError(t, json.Unmarshal([]byte(stdout), &got))
		require.Equal(t, node.local.TrustDomain, got.TrustDomain)
		require.Equal(t, node.local.Sequence, got.Sequence)
		require.Equal(t, node.local.PEM, got.PEM)
		require.JSONEq(t, string(node.local.Document), string(got.Document))
		require.Contains(t, stdout, "\n  \"trust_domain\": \"example.org\",\n")
	})
}

func TestBundleShowPEMWithoutCertificates(t *testing.T) {
	node, socket := startFakeNode(t)
	node.local.PEM = ""

	stdout, stderr, code := runCLI(t, socket, "", "bundle", "show", "--format", "pem")
	require.Equal(t, 0, code)
	require.Empty(t, stdout)
	require.Equal(t, "Note: the bundle of example.org has no X.509 authorities; "+
		"use --format spiffe to see its JWT keys\n", stderr)
}

func TestBundleListAll(t *testing.T) {
	node, socket := startFakeNode(t)
	orgB := toAPIBundle(t, newTestBundle(t, "org-b.test", 4), "fetched")
	orgA := toAPIBundle(t, newTestBundle(t, "org-a.test", 9), "fetched")
	node.bundles["org-b.test"] = orgB
	node.bundles["org-a.test"] = orgA
	banner := "****************************************\n"

	t.Run("spiffe under trust domain banners", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, socket, "", "bundle", "list")
		require.Equal(t, 0, code, stderr)
		want := banner + "* org-a.test\n" + banner + indentJSON(t, orgA.Document) + "\n" +
			banner + "* org-b.test\n" + banner + indentJSON(t, orgB.Document)
		require.Equal(t, want, stdout)
	})
	t.Run("pem under trust domain banners", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, socket, "", "bundle", "list", "--format", "pem")
		require.Equal(t, 0, code, stderr)
		want := banner + "* org-a.test\n" + banner + orgA.PEM + "\n" +
			banner + "* org-b.test\n" + banner + orgB.PEM
		require.Equal(t, want, stdout)
	})
	t.Run("json prints an array", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, socket, "", "--output", "json", "bundle", "list")
		require.Equal(t, 0, code, stderr)
		var got []admin.Bundle
		require.NoError(t, json.Unmarshal([]byte(stdout), &got))
		require.Len(t, got, 2)
		require.Equal(t, "org-a.test", got[0].TrustDomain)
		require.Equal(t, "org-b.test", got[1].TrustDomain)
	})
}

func TestBundleListEmpty(t *testing.T) {
	_, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "bundle", "list")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stdout)

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "bundle", "list")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "[]\n", stdout)
}

func TestBundleListOneTrustDomain(t *testing.T) {
	node, socket := startFakeNode(t)
	orgB := toAPIBundle(t, newTestBundle(t, "org-b.test", 4), "fetched")
	node.bundles["org-b.test"] = orgB
	node.bundles["org-c.test"] = toAPIBundle(t, newTestBundle(t, "org-c.test", 1), "fetched")

	for _, id := range []string{"org-b.test", "spiffe://org-b.test"} {
		t.Run("id given as "+id, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, socket, "", "bundle", "list", "--id", id,
				"--format", "pem")
			require.Equal(t, 0, code, stderr)
			require.Equal(t, orgB.PEM, stdout)
		})
	}
}

func TestBundleListUnknownTrustDomain(t *testing.T) {
	_, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, "", "bundle", "list", "--id", "org-x.test")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "Error: no bundle stored for org-x.test; list them with "+
		"`bundlex bundle list`\n", stderr)
}

func TestBundleSetFromFile(t *testing.T) {
	node, socket := startFakeNode(t)
	b := newTestBundle(t, "org-b.test", 5)
	pemData := pemOf(b.X509Authorities...)
	path := filepath.Join(t.TempDir(), "org-b.pem")
	require.NoError(t, os.WriteFile(path, []byte(pemData), 0o600))

	stdout, stderr, code := runCLI(t, socket, "", "bundle", "set", "--id",
		"spiffe://org-b.test", "--path", path, "--format", "pem")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, admin.SetBundleRequest{Format: "pem", Data: pemData}, node.lastSet)
	require.Equal(t, "Bundle set for org-b.test: no sequence, 1 X.509 authority, "+
		"0 JWT keys.\n", stdout)
	require.Equal(t, "operator", node.bundles["org-b.test"].Source)
}

func TestBundleSetFromStdin(t *testing.T) {
	node, socket := startFakeNode(t)
	doc := string(marshalTestBundle(t, newTestBundle(t, "org-b.test", 5)))

	stdout, stderr, code := runCLI(t, socket, doc, "--output", "json", "bundle", "set",
		"--id", "org-b.test", "--path", "-")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, admin.SetBundleRequest{Format: "spiffe", Data: doc}, node.lastSet)

	var got admin.Bundle
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, "org-b.test", got.TrustDomain)
	require.Equal(t, uint64(5), got.Sequence)
	require.Equal(t, 1, got.X509Keys)
	require.Equal(t, 1, got.JWTKeys)
}

func TestBundleSetRejectedByNode(t *testing.T) {
	node, socket := startFakeNode(t)

	stdout, stderr, code := runCLI(t, socket, `{"keys": 7}`, "bundle", "set",
		"--id", "org-b.test", "--path", "-")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Regexp(t, `^Error: bundle: .*org-b\.test.*\n$`, stderr)
	require.NotContains(t, stderr, "Usage:")
	require.Equal(t, 1, node.callCount())
}

func TestBundleSetInputErrors(t *testing.T) {
	node, socket := startFakeNode(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	missing := filepath.Join(dir, "missing.json")

	tests := []struct {
		name  string
		path  string
		stdin string
		want  string
	}{
		{"missing file", missing, "", "Error: invalid --path: open " + missing +
			": no such file or directory\n"},
		{"empty file", empty, "", "Error: --path " + empty + " is empty; " +
			"pass a file with the content\n"},
		{"empty stdin", "-", "", "Error: --path - is empty; pass a file with the content\n"},
		{"directory instead of file", dir, "", "Error: --path " + dir +
			" is a directory; pass a file\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, socket, tt.stdin, "bundle", "set",
				"--id", "org-b.test", "--path", tt.path)
			require.Equal(t, 1, code)
			require.Equal(t, tt.want, stderr)
		})
	}
	require.Equal(t, 0, node.callCount())
}

func TestBundleDelete(t *testing.T) {
	node, socket := startFakeNode(t)
	node.bundles["org-b.test"] = toAPIBundle(t, newTestBundle(t, "org-b.test", 4), "fetched")
	node.bundles["org-c.test"] = toAPIBundle(t, newTestBundle(t, "org-c.test", 4), "fetched")

	stdout, stderr, code := runCLI(t, socket, "", "bundle", "delete", "--id", "org-b.test")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Bundle deleted for org-b.test.\n", stdout)
	require.NotContains(t, node.bundles, "org-b.test")

	stdout, stderr, code = runCLI(t, socket, "", "--output", "json", "bundle", "delete",
		"--id", "org-c.test")
	require.Equal(t, 0, code, stderr)
	require.JSONEq(t, `{"trust_domain": "org-c.test", "deleted": true}`, stdout)

	_, stderr, code = runCLI(t, socket, "", "bundle", "delete", "--id", "org-c.test")
	require.Equal(t, 1, code)
	require.Equal(t, "Error: no bundle stored for org-c.test\n", stderr)
}
