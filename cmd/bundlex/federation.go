package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/internal/admin"
)

func newFederationCommand(g *globalOptions) *cobra.Command {
	return newGroupCommand("federation", "Manage federation relationships",
		newFederationCreateCommand(g),
		newFederationUpdateCommand(g),
		newFederationListCommand(g),
		newFederationShowCommand(g),
		newFederationDeleteCommand(g),
		newFederationRefreshCommand(g),
	)
}

func newFederationCreateCommand(g *globalOptions) *cobra.Command {
	flags := &relationshipFlags{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a federation relationship with a peer trust domain",
		Long: "Create a relationship: the node then fetches the peer's bundle from its " +
			"bundle endpoint and keeps it current. Relationships are one-way, so the " +
			"peer needs its own relationship to trust this trust domain " +
			"(SPIFFE Federation 6).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, req, err := flags.request(cmd, true)
			if err != nil {
				return err
			}
			rel, err := g.client().CreateRelationship(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.printRelationship(cmd.OutOrStdout(), rel,
				"Created the federation relationship with "+rel.TrustDomain+".")
		},
	}
	flags.register(cmd)
	return cmd
}

func newFederationUpdateCommand(g *globalOptions) *cobra.Command {
	flags := &relationshipFlags{}
	var clearPrefixes bool
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Change a federation relationship",
		Long: "Change the fields of a relationship that the flags name; the other " +
			"fields keep their stored values.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, req, err := flags.request(cmd, false)
			if err != nil {
				return err
			}
			if clearPrefixes && len(req.AllowedIDPrefixes) > 0 {
				return flagErrorf("--clear-allowed-id-prefixes and --allowed-id-prefix " +
					"contradict each other: pass one of them")
			}
			req.ClearAllowedIDPrefixes = clearPrefixes
			rel, err := g.client().UpdateRelationship(cmd.Context(), td, req)
			if err != nil {
				return err
			}
			return g.printRelationship(cmd.OutOrStdout(), rel,
				"Updated the federation relationship with "+rel.TrustDomain+".")
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVar(&clearPrefixes, "clear-allowed-id-prefixes", false,
		"remove every allowed ID prefix, so that the whole trust domain is trusted again")
	return cmd
}

func newFederationListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the federation relationships and their fetch state",
		Long: "List every relationship with its state: ok after a successful fetch, " +
			"failing after a failed one, pending before the first success.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rels, err := g.client().Relationships(cmd.Context())
			if err != nil {
				return err
			}
			sort.Slice(rels, func(i, j int) bool { return rels[i].TrustDomain < rels[j].TrustDomain })
			if g.jsonOutput() {
				if rels == nil {
					rels = []admin.Relationship{}
				}
				return writeJSON(cmd.OutOrStdout(), rels)
			}
			return writeRelationshipTable(cmd.OutOrStdout(), rels)
		},
	}
}

// newTrustDomainCommand returns a command that takes only --trust-domain and
// passes its name to run.
func newTrustDomainCommand(use, short string,
	run func(cmd *cobra.Command, td string) error) *cobra.Command {
	var trustDomain string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := parseTrustDomainFlag("--trust-domain", trustDomain)
			if err != nil {
				return err
			}
			return run(cmd, td)
		},
	}
	cmd.Flags().StringVar(&trustDomain, "trust-domain", "",
		"peer trust domain, given as org-b.test or spiffe://org-b.test")
	return cmd
}

func newFederationShowCommand(g *globalOptions) *cobra.Command {
	return newTrustDomainCommand("show", "Show a federation relationship and its status",
		func(cmd *cobra.Command, td string) error {
			rel, err := g.client().Relationship(cmd.Context(), td)
			if err != nil {
				return err
			}
			return g.printRelationship(cmd.OutOrStdout(), rel, "")
		})
}

func newFederationDeleteCommand(g *globalOptions) *cobra.Command {
	cmd := newTrustDomainCommand("delete",
		"End a federation relationship and delete the peer's bundle",
		func(cmd *cobra.Command, td string) error {
			if err := g.client().DeleteRelationship(cmd.Context(), td); err != nil {
				return err
			}
			return g.printDeleted(cmd.OutOrStdout(), td,
				"Deleted the federation relationship with "+td+" and its bundle.")
		})
	cmd.Long = "End a relationship: the node stops fetching the peer's bundle and " +
		"deletes it on every node (SPIFFE Federation 6.3)."
	return cmd
}

func newFederationRefreshCommand(g *globalOptions) *cobra.Command {
	return newTrustDomainCommand("refresh", "Fetch a peer's bundle now",
		func(cmd *cobra.Command, td string) error {
			rel, err := g.client().RefreshRelationship(cmd.Context(), td)
			if err != nil {
				return err
			}
			return g.printRefreshed(cmd.OutOrStdout(), rel)
		})
}

// printRefreshed prints the relationship after a refresh. A node may record a
// failed fetch in the status and still return 200, so a failing state becomes an
// error to give the command a non-zero exit status.
func (g *globalOptions) printRefreshed(w io.Writer, rel admin.Relationship) error {
	failed := relationshipState(rel.Status) == stateFailing
	summary := "Fetched the bundle of " + rel.TrustDomain + "."
	if failed {
		summary = "The last fetch of the bundle of " + rel.TrustDomain + " failed."
	}
	if err := g.printRelationship(w, rel, summary); err != nil {
		return err
	}
	if failed {
		return fmt.Errorf("refresh of %s failed: %s", rel.TrustDomain,
			orText(oneLine(rel.Status.LastError), "the node recorded no error message"))
	}
	return nil
}

// printRelationship prints rel as JSON, or as the `federation show` block after
// the summary line, if any.
func (g *globalOptions) printRelationship(w io.Writer, rel admin.Relationship,
	summary string) error {
	if g.jsonOutput() {
		return writeJSON(w, rel)
	}
	if summary != "" {
		fmt.Fprintf(w, "%s\n\n", summary)
	}
	return writeRelationship(w, rel)
}
