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
	svidFileName = "svid.pem"
	keyFileName  = "key.pem"
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
			"are printed to standard output.",
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
				return writeX509SVID(cmd.OutOrStdout(), writeDir, svid)
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
	cmd.Flags().StringVar(&writeDir, "write", "",
		"directory to write "+svidFileName+" and "+keyFileName+" (mode 0600) to")
	return cmd
}

// writeX509SVID writes the certificates and the key into dir. The key file is
// created with mode 0600 so that only the operator can read it.
func writeX509SVID(out io.Writer, dir string, svid admin.X509SVID) error {
	svidPath := filepath.Join(dir, svidFileName)
	keyPath := filepath.Join(dir, keyFileName)
	if err := os.WriteFile(svidPath, []byte(svid.CertsPEM), 0o644); err != nil {
		return fmt.Errorf("write the X509-SVID: %w", err)
	}
	if err := os.WriteFile(keyPath, []byte(svid.KeyPEM), 0o600); err != nil {
		return fmt.Errorf("write the private key: %w", err)
	}
	_, err := fmt.Fprintf(out, "X509-SVID written to %s\nPrivate key written to %s\n",
		svidPath, keyPath)
	return err
}

func newJWTMintCommand(g *globalOptions) *cobra.Command {
	var spiffeID string
	var audience []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "mint",
		Short: "Mint a JWT-SVID",
		Args:  noArgs,
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
	return cmd
}
