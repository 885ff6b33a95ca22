package clustertls

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often a StreamLayer reads its CA, certificate
// and key files to pick up a rotation. The files are a few kilobytes, so a
// check is cheap, and a rotated certificate is used within this interval.
const DefaultReloadInterval = 3 * time.Second

// reloader holds the current credentials and replaces them when the files
// change and the new contents load and verify.
type reloader struct {
	files   credentialFiles
	logger  *slog.Logger
	current atomic.Pointer[credentials]

	// mu serializes reloads and guards lastFailure, so that files that stay
	// broken are logged once rather than at every check.
	mu          sync.Mutex
	lastFailure *loadFailure

	reloads        atomic.Uint64
	reloadFailures atomic.Uint64
}

// newReloader loads the files once and fails when they do not load or verify,
// because a node without valid credentials can take no part in Raft.
func newReloader(files credentialFiles, logger *slog.Logger) (*reloader, error) {
	caPEM, certPEM, keyPEM, err := files.read()
	if err != nil {
		return nil, err
	}
	creds, err := buildCredentials(files, caPEM, certPEM, keyPEM, time.Now())
	if err != nil {
		return nil, err
	}
	r := &reloader{files: files, logger: logger}
	r.current.Store(creds)
	return r, nil
}

func (r *reloader) credentials() *credentials {
	return r.current.Load()
}

// reload reads the files and switches to their contents when they changed and
// are valid. It returns nil when nothing changed. On error the current
// credentials stay in use. Contents that failed are checked again every time,
// because a certificate that is not valid yet becomes valid later.
func (r *reloader) reload(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	caPEM, certPEM, keyPEM, err := r.files.read()
	if err != nil {
		return r.fail(&loadFailure{err: err})
	}
	if r.current.Load().sameContent(caPEM, certPEM, keyPEM) {
		r.lastFailure = nil
		return nil
	}
	creds, err := buildCredentials(r.files, caPEM, certPEM, keyPEM, now)
	if err != nil {
		content := &credentials{caPEM: caPEM, certPEM: certPEM, keyPEM: keyPEM}
		return r.fail(&loadFailure{content: content, err: err})
	}
	r.current.Store(creds)
	r.lastFailure = nil
	r.reloads.Add(1)
	r.logger.Info("reloaded the cluster TLS certificate", "cert_file", r.files.cert,
		"ca_file", r.files.ca, "subject", creds.leaf.Subject.CommonName,
		"serial", creds.leaf.SerialNumber.Text(16), "not_after", creds.leaf.NotAfter)
	return nil
}

// loadFailure is one failed check: the file contents, or nil when a file could
// not be read, and the error.
type loadFailure struct {
	content *credentials
	err     error
}

// repeats reports whether f failed on the same contents as previous, or with
// the same read error. Errors of the same contents are not compared, because
// a verification error contains the current time.
func (f *loadFailure) repeats(previous *loadFailure) bool {
	switch {
	case previous == nil:
		return false
	case f.content != nil && previous.content != nil:
		return f.content.sameContent(previous.content.caPEM, previous.content.certPEM,
			previous.content.keyPEM)
	default:
		return f.content == nil && previous.content == nil &&
			f.err.Error() == previous.err.Error()
	}
}

// fail counts a failed check and logs it unless it repeats the previous one.
func (r *reloader) fail(failure *loadFailure) error {
	r.reloadFailures.Add(1)
	if !failure.repeats(r.lastFailure) {
		r.logger.Warn("cluster TLS files failed to load; keeping the last good "+
			"certificate until they are fixed", "cert_file", r.files.cert,
			"key_file", r.files.key, "ca_file", r.files.ca, "error", failure.err)
	}
	r.lastFailure = failure
	return failure.err
}
