package config

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// exampleCommentedKeys are the keys that the complete example of
// docs/configuration.md shows only as comments, because its single node with a
// built-in authority and https_spiffe rejects them.
var exampleCommentedKeys = []string{
	"bundle_endpoint.cert_file",
	"bundle_endpoint.key_file",
	"authority.bundle_path",
	"authority.endpoint_cert_file",
	"authority.endpoint_key_file",
	"cluster.tls.ca_file",
	"cluster.tls.cert_file",
	"cluster.tls.key_file",
}

// completeExample returns the last YAML block of docs/configuration.md.
func completeExample(t *testing.T) string {
	t.Helper()
	docs := readDocs(t)
	start := strings.LastIndex(docs, "```yaml\n")
	require.NotEqual(t, -1, start)
	example := docs[start+len("```yaml\n"):]
	end := strings.Index(example, "```")
	require.NotEqual(t, -1, end)
	return example[:end]
}

// lookupDotted returns the value of a dotted key in a tree of YAML mappings.
func lookupDotted(tree map[string]any, key string) (any, bool) {
	var node any = tree
	for _, part := range strings.Split(key, ".") {
		mapping, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = mapping[part]; !ok {
			return nil, false
		}
	}
	return node, true
}

// exampleSection returns the lines of the example under the top-level mapping of
// key, and the last part of key.
func exampleSection(example, key string) (string, string) {
	top, _, _ := strings.Cut(key, ".")
	leaf := key[strings.LastIndex(key, ".")+1:]
	var lines []string
	inside := false
	for _, line := range strings.Split(example, "\n") {
		if line != "" && line[0] != ' ' {
			inside = strings.HasPrefix(line, top+":")
		}
		if inside {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n"), leaf
}

func TestDocsExampleSetsEveryKey(t *testing.T) {
	example := completeExample(t)
	var tree map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(example), &tree))

	commented := map[string]bool{}
	for _, key := range exampleCommentedKeys {
		commented[key] = true
	}
	for _, key := range Keys() {
		t.Run(key, func(t *testing.T) {
			value, set := lookupDotted(tree, key)
			if !commented[key] {
				require.True(t, set, "the complete example does not set %s", key)
				// A key with no value keeps the default, so it would show nothing.
				require.NotNil(t, value, "the complete example leaves %s empty", key)
				return
			}
			require.False(t, set, "the complete example sets %s, which it lists as "+
				"commented out", key)
			section, leaf := exampleSection(example, key)
			commentLine := regexp.MustCompile(`(?m)^\s*#\s*` + regexp.QuoteMeta(leaf) + `: \S`)
			require.Regexp(t, commentLine, section,
				"the complete example has no commented-out %s", key)
		})
	}
}

func TestDocsExampleSetsEveryRelationshipKey(t *testing.T) {
	example := completeExample(t)
	var tree map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(example), &tree))
	relationships, ok := lookupDotted(tree, trustDomainsKey)
	require.True(t, ok, "the complete example has no %s", trustDomainsKey)
	set := map[string]bool{}
	for _, rel := range relationships.(map[string]any) {
		for field := range rel.(map[string]any) {
			set[field] = true
		}
	}

	// The rows of the relationship table, which TestDocsListEveryKey checks
	// against the fields that the loader reads.
	docs := readDocs(t)
	start := strings.Index(docs, "### Static relationships")
	require.NotEqual(t, -1, start)
	section := docs[start:]
	table := strings.Index(section, "| ---")
	require.NotEqual(t, -1, table)
	section = section[:table+strings.Index(section[table:], "\n\n")]
	fields := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1)
	require.NotEmpty(t, fields)
	for _, field := range fields {
		require.True(t, set[field[1]], "no relationship of the complete example sets %s",
			field[1])
	}
}
