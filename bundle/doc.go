// Package bundle is the SPIFFE trust bundle model of bundlex. It parses bundle
// documents with the rules of the SPIFFE Trust Domain and Bundle specification,
// validates trust domain names and SPIFFE IDs, encodes bundles as canonical JSON
// and as PEM, and converts them to go-spiffe types for verification.
//
// A bundle never names its own trust domain (SPIFFE Trust Domain and Bundle 3), so
// every function here takes the trust domain alongside the document.
//
// Where go-spiffe v2 is stricter than the specification, this package follows the
// specification: an x509-svid key with several certificates uses the first one
// (X509-SVID 6.2), and a jwt-svid key without "kid" is skipped with a warning
// rather than failing the whole bundle (JWT-SVID 6.2).
package bundle
