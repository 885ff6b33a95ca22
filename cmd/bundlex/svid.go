package main

import "github.com/spf13/cobra"

// mintPolicyHelp names the node settings that decide whether a mint succeeds, so
// that an operator who sees a rejection finds the setting to change.
const mintPolicyHelp = "The node signs only SPIFFE IDs of its own trust domain that fall " +
	"under authority.mint_allowed_id_prefixes (all of them when the list is empty), and " +
	"only with the built-in authority. --ttl must be whole seconds and at most the node's " +
	"maximum SVID TTL; 0 means that maximum."

// newSVIDCommand returns `svid mint x509` and `svid mint jwt`, the documented
// names of the mint commands. They run the same code as `x509 mint` and
// `jwt mint`, which keep SPIRE Server's spelling for operators who know it and
// also accept its one-dash flags, such as -spiffeID.
func newSVIDCommand(g *globalOptions) *cobra.Command {
	x509 := newX509MintCommand(g)
	x509.Use = "x509"
	x509.Long = "Mint an X509-SVID with the node's built-in authority. Without --write " +
		"the certificates and the private key are printed to standard output.\n\n" +
		writeHelp + "\n\n" + mintPolicyHelp +
		" The X509-SVID maximum is authority.x509_svid_max_ttl."
	x509.Example = "  bundlex svid mint x509 --spiffe-id spiffe://example.org/agents/planner " +
		"--ttl 10m --write ./planner"

	jwt := newJWTMintCommand(g)
	jwt.Use = "jwt"
	jwt.Long = "Mint a JWT-SVID with the node's built-in authority and print the token, " +
		"or write it to the --write file with mode 0600.\n\n" +
		mintPolicyHelp + " The JWT-SVID maximum is authority.jwt_svid_max_ttl."
	jwt.Example = "  bundlex svid mint jwt --spiffe-id spiffe://example.org/agents/planner " +
		"--audience org-b --ttl 1m"

	mint := newGroupCommand("mint", "Mint an X509-SVID or a JWT-SVID", x509, jwt)
	return newGroupCommand("svid", "Mint SVIDs with the built-in authority", mint)
}
