package federation

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertificateReloadInterval is how often FileCertificate checks its files for
// a new certificate by default.
const DefaultCertificateReloadInterval = 30 * time.Second

// FileCertificate serves an https_web certificate and key from PEM files and picks
// up a renewed pair without a restart, for example after an ACME client rewrote the
// files. When the new files cannot be loaded, it keeps serving the last good pair and
// logs the error once per version of the files.
type FileCertificate struct {
	certFile string
	keyFile  string
	interval time.Duration
	logger   *slog.Logger

	current atomic.Pointer[tls.Certificate]
	// start and nextCheck measure time on the monotonic clock, so a wall clock
	// jump neither stops nor floods the checks. nextCheck is in nanoseconds
	// since start.
	start     time.Time
	nextCheck atomic.Int64

	// mu serializes checks. The fields below belong to the checking goroutine.
	mu sync.Mutex
	// digest identifies the contents of the files behind the last load attempt,
	// successful or not, so an unchanged broken pair is neither parsed nor logged
	// again.
	digest      [sha256.Size]byte
	lastReadErr string
}

// FileCertificateOption changes a default of NewFileCertificate.
type FileCertificateOption func(*FileCertificate)

// WithCertificateReloadInterval sets how often the files are checked for changes.
// Values <= 0 are ignored.
func WithCertificateReloadInterval(d time.Duration) FileCertificateOption {
	return func(c *FileCertificate) {
		if d > 0 {
			c.interval = d
		}
	}
}

// WithCertificateLogger sets the logger for reloads and reload errors. The default
// is slog.Default().
func WithCertificateLogger(logger *slog.Logger) FileCertificateOption {
	return func(c *FileCertificate) {
		if logger != nil {
			c.logger = logger
		}
	}
}

// NewFileCertificate loads the PEM certificate chain in certFile and its private key
// in keyFile. It fails when the pair cannot be loaded, since there is nothing to
// serve yet.
func NewFileCertificate(certFile, keyFile string, opts ...FileCertificateOption) (
	*FileCertificate, error) {
	c := &FileCertificate{
		certFile: certFile,
		keyFile:  keyFile,
		interval: DefaultCertificateReloadInterval,
		logger:   slog.Default(),
		start:    time.Now(),
	}
	for _, opt := range opts {
		opt(c)
	}
	certPEM, keyPEM, err := c.readFiles()
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("federation: load certificate %s with key %s: %w",
			certFile, keyFile, err)
	}
	c.digest = digestFiles(certPEM, keyPEM)
	c.current.Store(&pair)
	c.nextCheck.Store(int64(c.interval))
	return c, nil
}

// GetCertificate returns the current pair and, at most once per reload interval,
// first checks the files for a new one. It fits tls.Config.GetCertificate.
func (c *FileCertificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.reloadIfDue()
	return c.current.Load(), nil
}

func (c *FileCertificate) reloadIfDue() {
	elapsed := int64(time.Since(c.start))
	if elapsed < c.nextCheck.Load() {
		return
	}
	// A concurrent handshake that finds the check under way serves the current
	// pair rather than wait for the files.
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if elapsed < c.nextCheck.Load() {
		return
	}
	c.nextCheck.Store(elapsed + int64(c.interval))
	c.reload()
}

func (c *FileCertificate) reload() {
	certPEM, keyPEM, err := c.readFiles()
	if err != nil {
		// Files are often missing for a moment while a renewal replaces them, so
		// only a new error message is logged.
		if err.Error() != c.lastReadErr {
			c.lastReadErr = err.Error()
			c.logger.Warn("bundle endpoint certificate files cannot be read; serving "+
				"the previous certificate", "error", err)
		}
		return
	}
	c.lastReadErr = ""

	digest := digestFiles(certPEM, keyPEM)
	if digest == c.digest {
		return
	}
	c.digest = digest

	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		c.logger.Warn("bundle endpoint certificate files changed but cannot be loaded; "+
			"serving the previous certificate until they are fixed",
			"cert_file", c.certFile, "key_file", c.keyFile, "error", err)
		return
	}

	c.current.Store(&pair)
	attrs := []any{"cert_file", c.certFile}
	if pair.Leaf != nil {
		attrs = append(attrs, "subject", pair.Leaf.Subject.String(),
			"not_after", pair.Leaf.NotAfter)
	}
	c.logger.Info("bundle endpoint certificate reloaded", attrs...)
}

func (c *FileCertificate) readFiles() (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(c.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read certificate file: %w", err)
	}
	keyPEM, err = os.ReadFile(c.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read key file: %w", err)
	}
	return certPEM, keyPEM, nil
}

// digestFiles hashes both files with the certificate's length first, so that moving
// bytes from one file to the other changes the digest.
func digestFiles(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, uint64(len(certPEM)))
	h.Write(certPEM)
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
