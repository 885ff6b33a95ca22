package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLostAuthorityKeysAreReported(t *testing.T) {
	node := startNode(t, nodeOptions{trustDomain: "org-a.test", refreshHint: peerHint})
	before := localBundle(t, node)
	node.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(node.dir, "data", "authority")))
	node.restart()

	after := localBundle(t, node)
	require.Greater(t, after.Sequence, before.Sequence, "the new keys are published")
	require.True(t, strings.Contains(node.logs(), "authority directory was replaced or lost"),
		"the operator is told that peers will reject the new keys")
}
