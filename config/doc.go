// Package config defines the typed configuration of a bundlex node and loads it.
//
// Values come from four layers, each overriding the one before: the defaults of
// [Default], a YAML file, environment variables with the BUNDLEX_ prefix, and
// command-line flags. [Load] merges the layers with viper, rejects keys it does
// not know, fills the defaults that depend on other keys and runs
// [Config.Validate]. docs/configuration.md lists every key.
//
// Static federation relationships live under federation.trust_domains and are
// keyed by trust domain name. Those names contain dots, which viper would read as
// key separators, so this package reads that map from the YAML tree itself and
// takes the environment and flag forms as one JSON or YAML object.
package config
