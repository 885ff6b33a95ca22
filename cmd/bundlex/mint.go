package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/internal/admin"
)

// File names that `x509 mint --write` creates, as SPIRE Server's does.
const (
	svidFileName   = "svid.pem"
	keyFileName    = "key.pem"
	bundleFileName = "bundle.pem"
)

// spireFlagsHelp names the SPIRE Server flags that `x509 mint` and `jwt mint`
// accept; rewriteSPIREFlags translates them.
const spireFlagsHelp = "As in SPIRE Server, the flags may also be written -spiffeID, -ttl, " +
	"-audience and -write, with one dash."

// writeHelp describes --write in the long help of the X509-SVID mint commands.
const writeHelp = "--write DIR writes " + svidFileName + " (the X509-SVID), " + keyFileName +
	" (its private key, mode 0600) and " + bundleFileName + " (the X.509 authorities of " +
	"the local trust domain, to verify X509-SVIDs of this trust domain) into DIR, and " +
	"creates DIR with mode 0700 if it is missing. Each file is replaced as a whole, and a " +
	"symbolic link in its place is replaced, not followed."

// Modes of the files and the directory that `x509 mint --write` creates. Only
// the private key is secret. The directory mode applies only to a directory
// that the command creates.
const (
	writeDirMode    os.FileMode = 0o700
	keyFileMode     os.FileMode = 0o600
	publicFileMode  os.FileMode = 0o644
	tempFilePattern             = ".bundlex-*.tmp"
)

func newX509Command(g *globalOptions) *cobra.Command {
	return newGroupCommand("x509", "Mint X509-SVIDs with the built-in authority",
		newX509MintCommand(g))
}

func newJWTCommand(g *globalOptions) *cobra.Command {
	return newGroupCommand("jwt", "Mint JWT-SVIDs with the built-in authority",
		newJWTMintCommand(g))
}

// checkMintFlags checks the SPIFFE ID and TTL shared by both mint commands and
// returns the TTL in whole seconds, 0 for the node's default.
func checkMintFlags(spiffeID string, ttl time.Duration) (int64, error) {
	if spiffeID == "" {
		return 0, flagErrorf("missing --spiffe-id: pass the ID to mint, such as " +
			"spiffe://example.org/workload")
	}
	if _, err := bundle.ParseID(spiffeID); err != nil {
		return 0, &flagError{err: fmt.Errorf("invalid --spiffe-id: %w", err)}
	}
	if ttl < 0 || (ttl > 0 && ttl%time.Second != 0) {
		return 0, flagErrorf("invalid --ttl %s: pass a whole number of seconds, such as "+
			"1h, or 0 for the node's default", ttl)
	}
	return int64(ttl / time.Second), nil
}

func newX509MintCommand(g *globalOptions) *cobra.Command {
	var spiffeID, writeDir string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "mint",
		Short: "Mint an X509-SVID and its private key",
		Long: "Mint an X509-SVID. Without --write the certificates and the private key " +
			"are printed to standard output.\n\n" + writeHelp + "\n\n" + spireFlagsHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ttlSeconds, err := checkMintFlags(spiffeID, ttl)
			if err != nil {
				return err
			}
			req := admin.MintX509SVIDRequest{SPIFFEID: spiffeID, TTLSeconds: ttlSeconds}
			svid, err := g.client().MintX509SVID(cmd.Context(), req)
			if err != nil {
				return err
			}
			if writeDir != "" {
				local, err := g.client().LocalBundle(cmd.Context())
				if err != nil {
					return fmt.Errorf("read the local bundle for %s: %w", bundleFileName, err)
				}
				return writeX509SVID(cmd.OutOrStdout(), writeDir, svid, local.PEM)
			}
			if g.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), svid)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "X509-SVID:\n%s\nPrivate key:\n%s",
				svid.CertsPEM, svid.KeyPEM)
			return err
		},
	}
	cmd.Flags().StringVar(&spiffeID, "spiffe-id", "", "SPIFFE ID of the X509-SVID")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime of the X509-SVID (default: the node's)")
	cmd.Flags().StringVar(&writeDir, "write", "", "directory to write "+svidFileName+", "+
		keyFileName+" (mode 0600) and "+bundleFileName+" to, created with mode 0700 if "+
		"missing; existing files are replaced")
	return cmd
}

// writeX509SVID writes the certificates, the key and the local trust domain's
// X.509 authorities into dir, which it creates if missing. Each file is
// replaced by a rename, so it gets its mode even when it existed with another
// one, and a symbolic link in its place is replaced rather than followed.
func writeX509SVID(out io.Writer, dir string, svid admin.X509SVID, bundlePEM string) error {
	if err := os.MkdirAll(dir, writeDirMode); err != nil {
		return fmt.Errorf("create the --write directory: %w", err)
	}
	files := []struct {
		name, label, content string
		mode                 os.FileMode
	}{
		{svidFileName, "X509-SVID", svid.CertsPEM, publicFileMode},
		{keyFileName, "Private key", svid.KeyPEM, keyFileMode},
		{bundleFileName, "Root CAs", bundlePEM, publicFileMode},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := replaceFile(path, []byte(f.content), f.mode); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if _, err := fmt.Fprintf(out, "%s written to %s\n", f.label, path); err != nil {
			return err
		}
	}
	return nil
}

// replaceFile writes data to a new file in the directory of path with mode and
// renames it over path. A reader sees the old content or the new one, never a
// part, and the new content never appears with the old file's mode.
func replaceFile(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempFilePattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp uses mode 0600; set the final mode before any data is written.
	if err = tmp.Chmod(mode); err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newJWTMintCommand(g *globalOptions) *cobra.Command {
	var spiffeID, writePath string
	var audience []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "mint",
		Short: "Mint a JWT-SVID",
		Long: "Mint a JWT-SVID and print the token, or write it to the --write file.\n\n" +
			spireFlagsHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ttlSeconds, err := checkMintFlags(spiffeID, ttl)
			if err != nil {
				return err
			}
			// A token without an audience would be accepted by any service that
			// trusts this trust domain.
			if len(audience) == 0 {
				return flagErrorf("missing --audience: pass at least one audience of " +
					"the token, such as --audience my-service")
			}
			req := admin.MintJWTSVIDRequest{SPIFFEID: spiffeID, Audience: audience,
				TTLSeconds: ttlSeconds}
			svid, err := g.client().MintJWTSVID(cmd.Context(), req)
			if err != nil {
				return err
			}
			if writePath != "" {
				// The token is a bearer credential, so only its owner may read it.
				if err := replaceFile(writePath, []byte(svid.Token+"\n"), keyFileMode); err != nil {
					return fmt.Errorf("write %s: %w", writePath, err)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "JWT-SVID written to %s\n", writePath)
				return err
			}
			if g.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), svid)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), svid.Token)
			return err
		},
	}
	cmd.Flags().StringVar(&spiffeID, "spiffe-id", "", "SPIFFE ID of the JWT-SVID")
	cmd.Flags().StringSliceVar(&audience, "audience", nil,
		"audience of the token; repeat for more")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime of the JWT-SVID (default: the node's)")
	cmd.Flags().StringVar(&writePath, "write", "", "file to write the token to, with mode "+
		"0600, instead of standard output; an existing file is replaced")
	return cmd
}
