package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/internal/admin"
)

func newBundleCommand(g *globalOptions) *cobra.Command {
	return newGroupCommand("bundle", "Show and manage trust bundles",
		newBundleShowCommand(g),
		newBundleListCommand(g),
		newBundleSetCommand(g),
		newBundleDeleteCommand(g),
	)
}

func addFormatFlag(cmd *cobra.Command, format *string, usage string) {
	cmd.Flags().StringVar(format, "format", formatSPIFFE,
		usage+": "+formatSPIFFE+" (JWK Set) or "+formatPEM+" (X.509 authorities only)")
}

func newBundleShowCommand(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the local trust domain's bundle",
		Long: "Print the bundle the node publishes for its own trust domain. With " +
			"--output json the whole API object is printed and --format is ignored.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormatFlag("--format", format); err != nil {
				return err
			}
			b, err := g.client().LocalBundle(cmd.Context())
			if err != nil {
				return err
			}
			return g.printBundle(cmd, b, format)
		},
	}
	addFormatFlag(cmd, &format, "output encoding")
	return cmd
}

func newBundleListCommand(g *globalOptions) *cobra.Command {
	var id, format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the federated bundles",
		Long: "Print every federated bundle, each under a '* <trust domain>' banner, " +
			"or only the bundle of --id.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormatFlag("--format", format); err != nil {
				return err
			}
			if id == "" {
				return g.listBundles(cmd, format)
			}
			td, err := parseTrustDomainFlag("--id", id)
			if err != nil {
				return err
			}
			b, err := g.client().Bundle(cmd.Context(), td)
			if err != nil {
				return err
			}
			return g.printBundle(cmd, b, format)
		},
	}
	cmd.Flags().StringVar(&id, "id", "",
		"print only this trust domain's bundle, given as org-b.test or spiffe://org-b.test")
	addFormatFlag(cmd, &format, "output encoding")
	return cmd
}

func (g *globalOptions) listBundles(cmd *cobra.Command, format string) error {
	bundles, err := g.client().Bundles(cmd.Context())
	if err != nil {
		return err
	}
	sort.Slice(bundles, func(i, j int) bool {
		return bundles[i].TrustDomain < bundles[j].TrustDomain
	})
	out := cmd.OutOrStdout()
	if g.jsonOutput() {
		if bundles == nil {
			bundles = []admin.Bundle{}
		}
		return writeJSON(out, bundles)
	}
	for i, b := range bundles {
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := writeBundleHeader(out, b.TrustDomain); err != nil {
			return err
		}
		if err := g.printBundle(cmd, b, format); err != nil {
			return err
		}
	}
	return nil
}

// printBundle prints b in the --output and --format the operator chose. A PEM
// output without certificates gets a note on stderr, because an empty stdout
// alone reads like a failure.
func (g *globalOptions) printBundle(cmd *cobra.Command, b admin.Bundle, format string) error {
	if g.jsonOutput() {
		return writeJSON(cmd.OutOrStdout(), b)
	}
	if format == formatPEM && b.PEM == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "Note: the bundle of %s has no X.509 authorities; "+
			"use --format %s to see its JWT keys\n", b.TrustDomain, formatSPIFFE)
	}
	return writeBundleBody(cmd.OutOrStdout(), b, format)
}

func newBundleSetCommand(g *globalOptions) *cobra.Command {
	var id, path, format string
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Override a federated bundle",
		Long: "Store a bundle for a federated trust domain. The override stands until " +
			"the next refresh of that trust domain (SPIFFE Federation 4.2).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := parseTrustDomainFlag("--id", id)
			if err != nil {
				return err
			}
			if path == "" {
				return flagErrorf("missing --path: pass the bundle file, or - to read " +
					"standard input")
			}
			if err := checkFormatFlag("--format", format); err != nil {
				return err
			}
			data, err := readInput(cmd, "--path", path)
			if err != nil {
				return err
			}
			req := admin.SetBundleRequest{Format: format, Data: data}
			b, err := g.client().SetBundle(cmd.Context(), td, req)
			if err != nil {
				return err
			}
			return g.printWritten(cmd.OutOrStdout(), b, "Bundle set for "+td)
		},
	}
	cmd.Flags().StringVar(&id, "id", "",
		"trust domain of the bundle, given as org-b.test or spiffe://org-b.test")
	cmd.Flags().StringVar(&path, "path", "", "bundle file to read, or - for standard input")
	addFormatFlag(cmd, &format, "encoding of the file")
	return cmd
}

// printWritten prints the bundle a write returned: the object with --output
// json, otherwise one line starting with summary.
func (g *globalOptions) printWritten(w io.Writer, b admin.Bundle, summary string) error {
	if g.jsonOutput() {
		return writeJSON(w, b)
	}
	_, err := fmt.Fprintf(w, "%s: %s.\n", summary, describeBundle(b))
	return err
}

func newBundleDeleteCommand(g *globalOptions) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a federated bundle",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := parseTrustDomainFlag("--id", id)
			if err != nil {
				return err
			}
			if err := g.client().DeleteBundle(cmd.Context(), td); err != nil {
				return err
			}
			return g.printDeleted(cmd.OutOrStdout(), td, "Bundle deleted for "+td+".")
		},
	}
	cmd.Flags().StringVar(&id, "id", "",
		"trust domain of the bundle, given as org-b.test or spiffe://org-b.test")
	return cmd
}

func (g *globalOptions) printDeleted(w io.Writer, td, message string) error {
	if g.jsonOutput() {
		return writeJSON(w, deletedResult{TrustDomain: td, Deleted: true})
	}
	_, err := fmt.Fprintln(w, message)
	return err
}
