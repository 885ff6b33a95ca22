package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// LoadOptions selects the sources Load reads. The environment is always the
// process environment.
type LoadOptions struct {
	// ConfigFile is the path of a YAML file. Empty means no file.
	ConfigFile string
	// Flags are parsed command-line flags, usually defined with AddFlags. Load
	// binds only the flags the user set whose names FlagName returns, so a
	// flag's default never hides a value from the file or the environment.
	// Nil means no flags.
	Flags *pflag.FlagSet
}

// Load builds the configuration from Default, the file, BUNDLEX_ environment
// variables and flags, in increasing precedence, then fills the derived
// defaults and validates the result. All errors found are returned together,
// one per line.
func Load(opts LoadOptions) (*Config, error) {
	v := viper.New()
	// An empty variable is a value, so BUNDLEX_HEALTH_ADDRESS= disables the
	// health listener the same way health.address: "" does.
	v.AllowEmptyEnv(true)

	var fileRelationships map[string]Relationship
	if opts.ConfigFile != "" {
		tree, rels, err := readFile(opts.ConfigFile)
		if err != nil {
			return nil, err
		}
		if err := v.MergeConfigMap(tree); err != nil {
			return nil, fmt.Errorf("config: merge config file %s: %w", opts.ConfigFile, err)
		}
		fileRelationships = rels
	}

	for _, s := range settings {
		if err := v.BindEnv(s.key, EnvName(s.key)); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", EnvName(s.key), err)
		}
		if flag := changedFlag(opts.Flags, FlagName(s.key)); flag != nil {
			if err := v.BindPFlag(s.key, flag); err != nil {
				return nil, fmt.Errorf("config: bind --%s: %w", flag.Name, err)
			}
		}
	}

	cfg := Default()
	errs := []error{checkRenamedEnv()}
	for _, s := range settings {
		if v.IsSet(s.key) {
			errs = append(errs, decodeValue(s.key, v.Get(s.key), s.field(cfg)))
		}
	}
	rels, err := loadRelationships(fileRelationships, opts.Flags)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if rels != nil {
		cfg.Federation.TrustDomains = rels
	}

	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkRenamedEnv rejects a set environment variable of a renamed key. Load no
// longer reads it, and ignoring it would silently drop a setting on upgrade.
func checkRenamedEnv() error {
	var errs []error
	for _, oldKey := range slices.Sorted(maps.Keys(renamedKeys)) {
		oldName, newKey := EnvName(oldKey), renamedKeys[oldKey]
		if _, ok := os.LookupEnv(oldName); ok {
			errs = append(errs, fmt.Errorf("config: environment variable %s is no longer "+
				"read: %s was renamed to %s, so set %s instead",
				oldName, oldKey, newKey, EnvName(newKey)))
		}
	}
	return errors.Join(errs...)
}

// loadRelationships picks the static relationships from the highest source
// that has them: the flag, then the environment variable, then the file. A
// higher source replaces the whole map; it does not merge entries.
func loadRelationships(fromFile map[string]Relationship,
	flags *pflag.FlagSet) (map[string]Relationship, error) {
	flagName := FlagName(trustDomainsKey)
	if flag := changedFlag(flags, flagName); flag != nil {
		return parseRelationshipsText(flag.Value.String(), "flag --"+flagName)
	}
	envName := EnvName(trustDomainsKey)
	if text, ok := os.LookupEnv(envName); ok {
		return parseRelationshipsText(text, "environment variable "+envName)
	}
	return fromFile, nil
}

// parseRelationshipsText reads relationships written as one JSON or YAML
// object, such as {"org-b.test": {"bundle_endpoint_url": "https://...", ...}}.
func parseRelationshipsText(text, sourceName string) (map[string]Relationship, error) {
	src := yamlSource{name: sourceName}
	node, err := src.parse([]byte(text))
	if err != nil {
		return nil, err
	}
	if node == nil {
		return map[string]Relationship{}, nil
	}
	return src.parseRelationships(node)
}

func changedFlag(flags *pflag.FlagSet, name string) *pflag.Flag {
	if flags == nil {
		return nil
	}
	flag := flags.Lookup(name)
	if flag == nil || !flag.Changed {
		return nil
	}
	return flag
}
