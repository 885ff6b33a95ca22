// Package authority provides the signing keys of the local trust domain.
//
// Builtin is the node's own certificate authority: an X.509 CA and a JWT
// signing key, both EC P-256, kept in a directory together with a JSON state
// file that records the rotation schedule. Each key moves through three
// states. A prepared key is published in the bundle but signs nothing. An
// active key signs SVIDs. A retired key signs nothing and stays published
// until every SVID it signed has expired (SPIFFE Federation 4.1).
//
// FileBundle is the alternative when another CA (for example SPIRE Server)
// owns the trust domain. It reads the local bundle from a file that the other
// CA writes and sends the new content to the caller whenever the file changes.
package authority
