// Package federation serves the local trust domain's SPIFFE bundle and fetches the
// bundles of federated trust domains, following the SPIFFE Federation
// specification.
//
// The server side is Handler, the HTTP handler for the bundle endpoint, and
// EndpointServer, the HTTPS server around it. The certificate of the server comes
// from a callback so that it can be renewed without a restart: the node's X509-SVID
// for the https_spiffe profile, or FileCertificate for the https_web profile.
//
// The client side is Fetch, which performs one HTTPS GET against a peer's endpoint
// with every check of the peer's profile and returns the raw document. The caller
// parses it and schedules the next fetch (see Poller).
package federation
