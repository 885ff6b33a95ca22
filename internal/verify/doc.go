// Package verify checks SPIFFE credentials for the consumers of a bundlex node. It
// decides whether a JWT-SVID or X509-SVID is valid and whose it is, with the
// bundles of the node's own trust domain and of every federated trust domain.
//
// A credential is checked only against the bundle of the trust domain named in
// its own SPIFFE ID, because bundles of different trust domains are never merged
// (SPIFFE Federation 4.2 and 7.3). A federated trust domain may further be limited
// to SPIFFE ID prefixes, so that a peer cannot vouch for identities it should not
// issue. Every failure is an *Error with a stable code that callers and HTTP
// clients can branch on.
//
// Verifier does the checks in process. NewHandler serves them over HTTP+JSON under
// /v1/verify/, and Server runs that handler over TLS.
package verify
