package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bundlex/bundlex/internal/admin"
)

func newClusterCommand(g *globalOptions) *cobra.Command {
	return newGroupCommand("cluster", "Inspect and change the cluster's membership",
		newClusterMembersCommand(g),
		newClusterRaftCommand(g),
		newClusterLeaveCommand(g),
		newClusterRemoveCommand(g),
		newClusterRecoverCommand(),
		newClusterTLSCommand(),
	)
}

func newClusterMembersCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the servers that gossip knows, with their Raft suffrage",
		Long: "List the servers that gossip knows, with their Raft suffrage. On the leader, " +
			"RAFT CHECK is failed for a member that the leader does not add to the Raft " +
			"configuration because its Raft address failed the connection check (mutual " +
			"TLS with the cluster certificates), and the errors follow the table. Other " +
			"nodes do not run the check and show -.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			members, err := g.client().ClusterMembers(cmd.Context())
			if err != nil {
				return err
			}
			if g.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), members)
			}
			return writeMembers(cmd.OutOrStdout(), members)
		},
	}
}

// writeMembers prints the members as a table. The RAFT CHECK column shows
// "failed" for a member that the leader does not add to the Raft configuration,
// and the failures follow the table.
func writeMembers(w io.Writer, members []admin.ClusterMember) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tGOSSIP ADDRESS\tSTATUS\tRAFT ADDRESS\tSUFFRAGE\tLAST INDEX\tRAFT CHECK")
	var failed []admin.ClusterMember
	for _, m := range members {
		check := "-"
		if m.RaftProbeError != "" {
			check = "failed"
			failed = append(failed, m)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, orText(m.GossipAddr, "-"),
			m.Status, orText(m.RaftAddr, "-"), orText(m.Suffrage, "none"), m.LastIndex, check)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failed) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nThe leader does not add these members to the Raft configuration, "+
		"because their Raft address failed its connection check:")
	for _, m := range failed {
		since := ""
		if m.RaftProbeFailingSince != nil {
			since = " since " + m.RaftProbeFailingSince.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %s (%s), failing%s: %s\n", m.Name, m.RaftAddr, since,
			m.RaftProbeError)
	}
	return nil
}

func newClusterRaftCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "raft",
		Short: "Show the Raft configuration: voters, non-voters, leader and indexes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.client().ClusterRaft(cmd.Context())
			if err != nil {
				return err
			}
			if g.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return writeRaftStatus(cmd.OutOrStdout(), st)
		},
	}
}

func writeRaftStatus(w io.Writer, st admin.RaftStatus) error {
	fmt.Fprintf(w, "Node %s is %s, term %d. Leader: %s.\n", st.Node, strings.ToLower(st.State),
		st.Term, orText(st.LeaderID, "none known"))
	fmt.Fprintf(w, "Last index %d, commit index %d, applied index %d.\n\n", st.LastIndex,
		st.CommitIndex, st.AppliedIndex)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSUFFRAGE\tLEADER")
	for _, s := range st.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Address, s.Suffrage, yesNo(s.Leader))
	}
	return tw.Flush()
}

func newClusterLeaveCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Make this node leave the cluster gracefully",
		Long: "Make the node behind --socket leave the cluster: it hands over leadership if " +
			"it has it, is removed from the Raft configuration, leaves gossip and stops. " +
			"Stopping a node (SIGTERM) does not leave, so a stopped cluster starts again " +
			"by itself.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.client().ClusterLeave(cmd.Context()); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "The node left the cluster and is stopping.")
			return err
		},
	}
}

func newClusterRemoveCommand(g *globalOptions) *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove a server from the Raft configuration",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if node == "" {
				return flagErrorf("--node is required: name the server to remove")
			}
			if err := g.client().ClusterRemove(cmd.Context(), node); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Removed server %s.\n", node)
			return err
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "name of the server to remove")
	return cmd
}
