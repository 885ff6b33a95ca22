// Package workload serves the SPIFFE Workload API on a Unix socket so that
// workloads on the host receive the trust bundles that the node holds: the local
// trust domain's and every federated one's. It streams X.509 and JWT bundles,
// pushes a new message whenever the content a stream carries changes, and
// validates JWT-SVIDs through a JWTValidator supplied by the node. With an
// SVIDConfig it also issues X509-SVIDs and JWT-SVIDs to local callers,
// identified by their Unix user and group IDs.
//
// # Access control
//
// The socket is created with mode 0777, as SPIRE Agent does, so that any user
// who can reach it can connect. The permissions of the directory that contains
// the socket are the access control: give that directory the owner, group and
// mode that admit exactly the workloads that should read bundles, and, with
// SVIDs on, receive an identity. The SPIFFE Workload Endpoint specification
// (section 5) forbids direct client authentication, and every client must send
// the security header "workload.spiffe.io: true" (section 3), which guards
// against server-side request forgery, not against local users.
//
// # SVIDs for local callers
//
// Section 5 of the same specification recommends out-of-band checks such as
// kernel introspection instead. The server reads the kernel's credentials of
// each connecting process (SO_PEERCRED, Linux only) through a gRPC
// TransportCredentials that exchanges no bytes, so go-spiffe clients connect
// unchanged. SVIDConfig.IDFor maps the caller to a SPIFFE ID; the node expands
// workload_api.svid_path_template with the caller's user and group IDs.
// SVIDConfig.AllowedUIDs limits which users get one. A caller whose
// credentials cannot be read, such as one on a TCP listener, a user outside
// AllowedUIDs, or a request for another SPIFFE ID gets PermissionDenied
// (SPIFFE Workload API 5.2.1 and 6.2.1). The bundle RPCs need no credentials.
//
// FetchX509SVID streams one X509-SVID with a new key, the local X.509 bundle
// and every federated one. It sends a new message when the bundles change and
// a new SVID when the current one reaches half of its lifetime. A node of a
// cluster signs with its own CA, which joins the local bundle only after the
// leader publishes it, so the stream holds an SVID back until the bundle it
// sends with it verifies it. FetchJWTSVID signs one JWT-SVID per request and,
// for the same reason, returns Unavailable while the local bundle does not
// verify it.
//
// # Without SVIDs
//
// Without an SVIDConfig, bundlex distributes bundles only. FetchX509SVID and
// FetchJWTSVID return InvalidArgument with a message that states this and names
// workload_api.svid_path_template. The SPIFFE Workload API specification
// suggests PermissionDenied for a caller without an identity (sections 5.2.1
// and 6.2.1). The Workload Endpoint specification lets clients retry
// PermissionDenied and Unavailable with a backoff, and states that they should
// not retry InvalidArgument (section 6). The watchers of go-spiffe v2.9.0 stop
// on InvalidArgument and Canceled only, and retry every other code,
// Unimplemented included, with a linear backoff from 1 to 30 seconds. Its
// X509Source and BundleSource watch FetchX509SVID, so with any other code their
// constructors would block until their context ends. With InvalidArgument they
// return this package's message at once. This server has no SVID to give, so a
// retry could never succeed. Workloads that need no identity use the client's
// FetchX509Bundles and WatchX509Bundles, or JWTSource, FetchJWTBundles and
// WatchJWTBundles, which read only the bundle RPCs.
//
// The WIT-SVID profile is not implemented: its RPCs return Unimplemented, as the
// SPIFFE Workload API specification requires of a server without the profile
// (section 7).
package workload
