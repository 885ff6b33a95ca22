package federation

import "errors"

// Sentinel errors of Fetch and ValidateEndpointURL. The returned errors wrap them, so
// match them with errors.Is. Each message names the peer and the failing value.
var (
	// ErrInvalidConfig marks a Peer or FetchOptions that cannot be used as given: a
	// missing trust domain, endpoint SPIFFE ID or trust bundle, an unknown profile, an
	// invalid endpoint URL or a limit out of range. Retrying does not help.
	ErrInvalidConfig = errors.New("invalid federation configuration")

	// ErrInvalidEndpointURL marks a URL that breaks SPIFFE Federation 5.2.1.1 or
	// 5.2.2.1: the scheme is not https, or it has userinfo, no host or a fragment.
	ErrInvalidEndpointURL = errors.New("invalid bundle endpoint URL")

	// ErrConnection marks a failure to connect to the endpoint, to complete the TLS
	// handshake for a reason other than authentication, or to read the response.
	ErrConnection = errors.New("bundle endpoint connection failed")

	// ErrTimeout marks a fetch that did not finish within FetchOptions.Timeout. The
	// error also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("bundle endpoint timed out")

	// ErrServerAuthentication marks a server certificate that failed the checks of
	// the configured profile. ErrProfileMismatch and ErrEndpointIDMismatch are more
	// specific cases, and an error that matches them also matches this one.
	ErrServerAuthentication = errors.New("bundle endpoint authentication failed")

	// ErrProfileMismatch marks a server that seems to speak the other profile than
	// the configured one. The client never switches profiles on its own (SPIFFE
	// Federation 7.2), so the relationship must be corrected.
	ErrProfileMismatch = errors.New("bundle endpoint profile mismatch")

	// ErrEndpointIDMismatch marks an https_spiffe server that presented an X509-SVID
	// with another SPIFFE ID than the configured endpoint SPIFFE ID.
	ErrEndpointIDMismatch = errors.New("unexpected bundle endpoint SPIFFE ID")

	// ErrRedirect marks a rejected redirect: over FetchOptions.MaxRedirects, or to a
	// target that is not a valid endpoint URL (SPIFFE Federation 7.5.1).
	ErrRedirect = errors.New("bundle endpoint redirect rejected")

	// ErrHTTPStatus marks a final response with another status than 200 OK.
	ErrHTTPStatus = errors.New("unexpected bundle endpoint HTTP status")

	// ErrBundleTooLarge marks a response body over FetchOptions.MaxBundleSize.
	ErrBundleTooLarge = errors.New("bundle exceeds the size limit")
)

// kindError keeps the message of err and adds sentinels for errors.Is. It lets a
// message read as one sentence while callers still branch on the failure class.
type kindError struct {
	err   error
	kinds []error
}

func (e *kindError) Error() string { return e.err.Error() }

func (e *kindError) Unwrap() []error {
	return append([]error{e.err}, e.kinds...)
}

// withKinds returns err marked with the given sentinels.
func withKinds(err error, kinds ...error) error {
	return &kindError{err: err, kinds: kinds}
}
