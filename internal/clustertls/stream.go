package clustertls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

const (
	// DefaultHandshakeTimeout bounds one inbound TLS handshake, and an outbound
	// dial with its handshake when Dial gets no timeout. A loopback or LAN
	// handshake takes milliseconds, so this only limits clients that stall.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxPendingHandshakes is how many inbound TLS handshakes may run at
	// once. Further connections are closed at once, so clients that never finish
	// a handshake tie up at most this many goroutines and sockets.
	DefaultMaxPendingHandshakes = 64
)

// StreamLayerConfig configures NewStreamLayer.
type StreamLayerConfig struct {
	// BindAddr is the host:port to listen on, such as 0.0.0.0:8300. Port 0
	// picks a free port.
	BindAddr string
	// AdvertiseAddr is the host:port that peers dial. Default: the listener's
	// address, which must then not be an unspecified address such as 0.0.0.0.
	AdvertiseAddr string
	// CAFile holds the cluster CA certificates; CertFile and KeyFile hold this
	// node's certificate and key, as written by CreateCA and CreateNodeCert.
	CAFile   string
	CertFile string
	KeyFile  string
	// Logger receives handshake failures, reloads, start and stop; default:
	// discard.
	Logger *slog.Logger

	// HandshakeTimeout defaults to DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ReloadInterval defaults to DefaultReloadInterval.
	ReloadInterval time.Duration
	// MaxPendingHandshakes defaults to DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
}

// StreamLayer is a hashicorp/raft StreamLayer over mutual TLS 1.3. Accept
// returns only connections whose handshake completed with a valid node
// certificate; Dial returns only connections to a peer that presented one.
type StreamLayer struct {
	cfg       StreamLayerConfig
	logger    *slog.Logger
	listener  net.Listener
	advertise net.Addr
	creds     *reloader
	// serverConfig hands each inbound handshake the current credentials.
	serverConfig *tls.Config

	ready   chan *tls.Conn
	pending chan struct{}
	closing chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once

	counters counters
	warnings warningLimiter
}

var _ hraft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer loads and verifies the certificate files, listens on
// cfg.BindAddr and starts accepting connections and checking the files for
// changes. Close stops it.
func NewStreamLayer(cfg StreamLayerConfig) (*StreamLayer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	files := credentialFiles{ca: cfg.CAFile, cert: cfg.CertFile, key: cfg.KeyFile}
	creds, err := newReloader(files, cfg.Logger)
	if err != nil {
		return nil, err
	}

	listener, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("clustertls: listen for Raft traffic on %s: %w; use a "+
			"free port", cfg.BindAddr, err)
	}
	advertise, err := advertiseAddr(cfg.AdvertiseAddr, listener.Addr())
	if err != nil {
		_ = listener.Close()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	l := &StreamLayer{
		cfg: cfg, logger: cfg.Logger, listener: listener, advertise: advertise,
		creds:   creds,
		ready:   make(chan *tls.Conn),
		pending: make(chan struct{}, cfg.MaxPendingHandshakes),
		closing: make(chan struct{}),
		ctx:     ctx, cancel: cancel,
	}
	l.serverConfig = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.creds.credentials().server, nil
		},
	}

	l.wg.Add(2)
	go l.acceptLoop()
	go l.reloadLoop()
	leaf := creds.credentials().leaf
	l.logger.Info("cluster TLS listening", "address", listener.Addr().String(),
		"advertise", advertise.String(), "subject", leaf.Subject.CommonName,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
	return l, nil
}

func (cfg *StreamLayerConfig) setDefaults() error {
	switch {
	case cfg.BindAddr == "":
		return errors.New("clustertls: bind address is missing; set a host:port " +
			"such as 0.0.0.0:8300")
	case cfg.CAFile == "" || cfg.CertFile == "" || cfg.KeyFile == "":
		return fmt.Errorf("clustertls: CA file %q, certificate file %q and key file %q "+
			"are all required; create them with CreateCA and CreateNodeCert",
			cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	case cfg.HandshakeTimeout < 0, cfg.ReloadInterval < 0, cfg.MaxPendingHandshakes < 0:
		return fmt.Errorf("clustertls: limits must not be negative (handshake timeout "+
			"%s, reload interval %s, max pending handshakes %d)", cfg.HandshakeTimeout,
			cfg.ReloadInterval, cfg.MaxPendingHandshakes)
	}
	cfg.HandshakeTimeout = orDefault(cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	cfg.ReloadInterval = orDefault(cfg.ReloadInterval, DefaultReloadInterval)
	cfg.MaxPendingHandshakes = orDefault(cfg.MaxPendingHandshakes,
		DefaultMaxPendingHandshakes)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// advertiseAddr resolves the address that peers dial. Raft stores it in the
// cluster configuration, so it must name one host.
func advertiseAddr(advertise string, listening net.Addr) (net.Addr, error) {
	if advertise == "" {
		tcp, ok := listening.(*net.TCPAddr)
		if !ok || tcp.IP.IsUnspecified() {
			return nil, fmt.Errorf("clustertls: the listener address %s cannot be "+
				"dialed by peers; set an advertise address", listening)
		}
		return tcp, nil
	}
	tcp, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("clustertls: resolve the advertise address %q: %w; set "+
			"a host:port that peers can dial", advertise, err)
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() || tcp.Port == 0 {
		return nil, fmt.Errorf("clustertls: invalid advertise address %q: peers need a "+
			"specific IP address and port", advertise)
	}
	return tcp, nil
}

// Accept waits for the next inbound connection whose TLS handshake completed.
// Failed handshakes are logged and counted here, never returned, because
// hashicorp/raft backs off its accept loop after an error. The only error is
// net.ErrClosed after Close.
func (l *StreamLayer) Accept() (net.Conn, error) {
	select {
	case <-l.closing:
		return nil, fmt.Errorf("clustertls: accept on %s: %w", l.listener.Addr(),
			net.ErrClosed)
	default:
	}
	select {
	case conn := <-l.ready:
		return conn, nil
	case <-l.closing:
		return nil, fmt.Errorf("clustertls: accept on %s: %w", l.listener.Addr(),
			net.ErrClosed)
	}
}

// Addr returns the advertise address, which hashicorp/raft's NetworkTransport
// reports as this node's address.
func (l *StreamLayer) Addr() net.Addr {
	return l.advertise
}

// Dial connects to a peer and completes the TLS handshake within timeout, or
// within HandshakeTimeout when timeout is not positive. The peer must present
// a node certificate of the cluster CA. In TLS 1.3 the server checks the
// client certificate after the client's handshake ends, so a peer that rejects
// this node's certificate shows up as an error on the first read.
func (l *StreamLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn,
	error) {
	if timeout <= 0 {
		timeout = l.cfg.HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	conn, err := l.dial(ctx, address)
	if err != nil {
		// A nil *tls.Conn in the interface would not compare equal to nil.
		return nil, err
	}
	return conn, nil
}

// dial connects to address and completes the client side of the handshake
// before ctx ends.
func (l *StreamLayer) dial(ctx context.Context, address hraft.ServerAddress) (*tls.Conn,
	error) {
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, "tcp", string(address))
	if err != nil {
		l.counters.dialFailures.Add(1)
		return nil, fmt.Errorf("clustertls: dial Raft peer %s: %w", address, err)
	}
	conn := tls.Client(raw, l.creds.credentials().client)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		l.counters.dialFailures.Add(1)
		return nil, fmt.Errorf("clustertls: TLS handshake with Raft peer %s failed: %w; "+
			"check that the peer is a bundlex node with a certificate from this "+
			"cluster's CA", address, err)
	}
	return conn, nil
}

// Reload checks the certificate files now instead of at the next
// ReloadInterval, for example on SIGHUP. It returns the load error, if any;
// the last good certificate stays in use.
func (l *StreamLayer) Reload() error {
	return l.creds.reload(time.Now())
}

// Close stops listening, ends pending handshakes and the reload loop, and waits
// for them. Connections already returned by Accept or Dial stay open. Calls
// after the first return nil.
func (l *StreamLayer) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closing)
		l.cancel()
		if closeErr := l.listener.Close(); closeErr != nil {
			err = fmt.Errorf("clustertls: close the listener on %s: %w",
				l.listener.Addr(), closeErr)
		}
		l.wg.Wait()
		l.logger.Info("cluster TLS stopped", "address", l.listener.Addr().String())
	})
	return err
}

func (l *StreamLayer) reloadLoop() {
	defer l.wg.Done()
	ticker := time.NewTicker(l.cfg.ReloadInterval)
	defer ticker.Stop()
	for {
		select {
		case <-l.closing:
			return
		case now := <-ticker.C:
			// reload logs its own errors.
			_ = l.creds.reload(now)
		}
	}
}
