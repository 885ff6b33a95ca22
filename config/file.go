package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// relationshipFields maps each key of a static relationship to its field.
var relationshipFields = map[string]func(r *Relationship) *string{
	"bundle_endpoint_url": func(r *Relationship) *string { return &r.BundleEndpointURL },
	"profile":             func(r *Relationship) *string { return &r.Profile },
	"endpoint_spiffe_id":  func(r *Relationship) *string { return &r.EndpointSPIFFEID },
	"bundle_path":         func(r *Relationship) *string { return &r.BundlePath },
	"bundle_format":       func(r *Relationship) *string { return &r.BundleFormat },
	"ca_file":             func(r *Relationship) *string { return &r.CAFile },
}

// relationshipListFields maps each list key of a static relationship to its
// field. A list is written as a YAML list or as one comma-separated string, as
// for the list settings such as authority.mint_allowed_id_prefixes.
var relationshipListFields = map[string]func(r *Relationship) *[]string{
	"allowed_id_prefixes": func(r *Relationship) *[]string { return &r.AllowedIDPrefixes },
}

// yamlSource is one YAML or JSON document: the config file, or the value of the
// relationships environment variable or flag.
type yamlSource struct {
	// name appears in errors: the file path, or the variable or flag.
	name string
	// lines adds "line N" to errors, which only helps for a multi-line file.
	lines bool
}

// readFile parses the config file. It returns the scalar keys as nested maps for
// viper, with federation.trust_domains removed, and the static relationships
// (nil when the file has none). Every key the file uses must be known.
func readFile(path string) (map[string]any, map[string]Relationship, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: read config file: %w: check the file path", err)
	}
	src := yamlSource{name: path, lines: true}
	root, err := src.parse(data)
	if err != nil || root == nil {
		return map[string]any{}, nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("config: %s: the top level must be a mapping of keys, "+
			"such as \"trust_domain: example.org\"", path)
	}
	// Decoding the whole tree once also rejects duplicate keys.
	tree := map[string]any{}
	if err := root.Decode(&tree); err != nil {
		return nil, nil, fmt.Errorf("config: parse config file %s: %w", path, err)
	}
	rels, err := src.checkSection(root, "")
	if err != nil {
		return nil, nil, err
	}
	if federation, ok := tree["federation"].(map[string]any); ok {
		delete(federation, "trust_domains")
	}
	return tree, rels, nil
}

// parse returns the document's top node, or nil for an empty document.
func (s yamlSource) parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: parse %s: %w", s.name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return resolveAlias(doc.Content[0]), nil
}

// checkSection checks every key of a mapping node at the dotted prefix against
// the known keys, and parses federation.trust_domains when it reaches that key.
func (s yamlSource) checkSection(node *yaml.Node, prefix string) (map[string]Relationship, error) {
	var rels map[string]Relationship
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		keyNode, value := node.Content[i], resolveAlias(node.Content[i+1])
		key := prefix + keyNode.Value
		switch {
		case key == trustDomainsKey:
			parsed, err := s.parseRelationships(value)
			rels = parsed
			errs = append(errs, err)
		case isSection(key):
			if value.Kind == yaml.MappingNode {
				nested, err := s.checkSection(value, key+".")
				errs = append(errs, err)
				if nested != nil {
					rels = nested
				}
			} else if !isNull(value) {
				errs = append(errs, s.errorAt(value, invalid(key, value.Value,
					"use a mapping of keys under "+key)))
			}
		case isSetting(key):
			errs = append(errs, s.checkSettingNode(key, value))
		default:
			errs = append(errs, s.unknownKey(keyNode, key, Keys()))
		}
	}
	return rels, errors.Join(errs...)
}

// checkSettingNode checks the shape of a value: a scalar for most keys, a scalar
// or a list of scalars for a list key such as cluster.join.
func (s yamlSource) checkSettingNode(key string, value *yaml.Node) error {
	if !isListSetting(key) {
		if value.Kind != yaml.ScalarNode {
			return s.errorAt(value, invalid(key, describeNode(value),
				"use a single value, not a list or mapping"))
		}
		return nil
	}
	return s.checkListNode(key, value)
}

// checkListNode accepts a scalar or a list of non-null scalars.
func (s yamlSource) checkListNode(key string, value *yaml.Node) error {
	switch value.Kind {
	case yaml.ScalarNode:
		return nil
	case yaml.SequenceNode:
		for _, item := range value.Content {
			item = resolveAlias(item)
			if item.Kind != yaml.ScalarNode || isNull(item) {
				return s.errorAt(item, invalid(key, describeNode(item),
					"use a list of strings, one value per entry"))
			}
		}
		return nil
	default:
		return s.errorAt(value, invalid(key, describeNode(value), "use a list of strings"))
	}
}

// parseRelationships reads a mapping of trust domain names to relationships.
// Names keep their exact spelling so that Validate can reject upper case.
func (s yamlSource) parseRelationships(node *yaml.Node) (map[string]Relationship, error) {
	rels := map[string]Relationship{}
	if isNull(node) {
		return rels, nil
	}
	if node.Kind != yaml.MappingNode {
		return nil, s.errorAt(node, invalid(trustDomainsKey, describeNode(node),
			"use a mapping from trust domain name to relationship"))
	}
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		name, value := node.Content[i].Value, resolveAlias(node.Content[i+1])
		prefix := relationshipKey(name, "")
		if _, dup := rels[name]; dup {
			errs = append(errs, s.errorAt(node.Content[i], fmt.Errorf(
				"config: %s: defined twice: keep one entry per trust domain", prefix)))
			continue
		}
		if value.Kind != yaml.MappingNode {
			errs = append(errs, s.errorAt(value, invalid(prefix, describeNode(value),
				"use a mapping with bundle_endpoint_url, profile and the other relationship keys")))
			continue
		}
		rel, err := s.parseRelationship(name, value)
		errs = append(errs, err)
		rels[name] = rel
	}
	return rels, errors.Join(errs...)
}

func (s yamlSource) parseRelationship(name string, node *yaml.Node) (Relationship, error) {
	var rel Relationship
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		keyNode, value := node.Content[i], resolveAlias(node.Content[i+1])
		key := relationshipKey(name, keyNode.Value)
		if listField, ok := relationshipListFields[keyNode.Value]; ok {
			errs = append(errs, s.parseListNode(key, value, listField(&rel)))
			continue
		}
		field, ok := relationshipFields[keyNode.Value]
		switch {
		case !ok:
			candidates := make([]string, 0, len(relationshipFields)+len(relationshipListFields))
			for known := range relationshipFields {
				candidates = append(candidates, relationshipKey(name, known))
			}
			for known := range relationshipListFields {
				candidates = append(candidates, relationshipKey(name, known))
			}
			errs = append(errs, s.unknownKey(keyNode, key, candidates))
		case isNull(value):
		case value.Kind != yaml.ScalarNode:
			errs = append(errs, s.errorAt(value, invalid(key, describeNode(value),
				"use a single string")))
		default:
			*field(&rel) = value.Value
		}
	}
	return rel, errors.Join(errs...)
}

// parseListNode stores a YAML list of strings, or one comma-separated string,
// into dst with the rules of decodeList. Null leaves dst empty.
func (s yamlSource) parseListNode(key string, value *yaml.Node, dst *[]string) error {
	if isNull(value) {
		return nil
	}
	if err := s.checkListNode(key, value); err != nil {
		return err
	}
	var raw any = value.Value
	if value.Kind == yaml.SequenceNode {
		items := make([]string, 0, len(value.Content))
		for _, item := range value.Content {
			items = append(items, resolveAlias(item).Value)
		}
		raw = items
	}
	list, err := decodeList(key, raw)
	if err != nil {
		return s.errorAt(value, err)
	}
	*dst = list
	return nil
}

// relationshipKey names a relationship key in errors. Brackets keep the dots of
// the trust domain name apart from the key separators.
func relationshipKey(trustDomain, field string) string {
	key := trustDomainsKey + "[" + strconv.Quote(trustDomain) + "]"
	if field != "" {
		key += "." + field
	}
	return key
}

func (s yamlSource) unknownKey(keyNode *yaml.Node, key string, candidates []string) error {
	hint := "see docs/configuration.md for the accepted keys"
	if renamed, ok := renamedKeys[key]; ok {
		hint = fmt.Sprintf("did you mean %q? This key was renamed", renamed)
	} else if best := closestKey(key, candidates); best != "" {
		hint = fmt.Sprintf("did you mean %q?", best)
	}
	where := ""
	if s.lines {
		where = fmt.Sprintf(" line %d", keyNode.Line)
	}
	return fmt.Errorf("config: unknown key %q in %s%s: %s", key, s.name, where, hint)
}

// errorAt appends the source and line to an error about a value.
func (s yamlSource) errorAt(node *yaml.Node, err error) error {
	if s.lines {
		return fmt.Errorf("%w (%s line %d)", err, s.name, node.Line)
	}
	return fmt.Errorf("%w (%s)", err, s.name)
}

func resolveAlias(node *yaml.Node) *yaml.Node {
	for node != nil && node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	return node
}

func isNull(node *yaml.Node) bool {
	return node.Kind == yaml.ScalarNode && node.Tag == "!!null"
}

// nodeShape is a value described in words in errors, printed without quotes.
type nodeShape string

func describeNode(node *yaml.Node) nodeShape {
	switch node.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return nodeShape(strconv.Quote(node.Value))
	}
}

func isSetting(key string) bool {
	_, ok := findSetting(key)
	return ok
}

// isListSetting reports whether key takes a list.
func isListSetting(key string) bool {
	s, ok := findSetting(key)
	if !ok {
		return false
	}
	switch s.field(&Config{}).(type) {
	case *[]string, *[]uint32:
		return true
	default:
		return false
	}
}

func findSetting(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// isSection reports whether key is a proper prefix of a known key, such as
// "bundle_endpoint" or "federation".
func isSection(key string) bool {
	for _, known := range Keys() {
		if strings.HasPrefix(known, key+".") {
			return true
		}
	}
	return false
}

// closestKey returns the candidate within a small edit distance of key, or "".
func closestKey(key string, candidates []string) string {
	const maxDistance = 3
	best, bestDistance := "", maxDistance+1
	for _, candidate := range candidates {
		if d := editDistance(key, candidate); d < bestDistance {
			best, bestDistance = candidate, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	previous := make([]int, len(b)+1)
	current := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
		}
		previous, current = current, previous
	}
	return previous[len(b)]
}
