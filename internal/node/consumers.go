package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/bundlex/bundlex/bundle"
	"github.com/bundlex/bundlex/config"
	"github.com/bundlex/bundlex/federation"
	"github.com/bundlex/bundlex/internal/authority"
	"github.com/bundlex/bundlex/internal/output"
	"github.com/bundlex/bundlex/internal/verify"
	"github.com/bundlex/bundlex/internal/workload"
)

// view is the parsed local and federated bundles at one applied index, shared by
// the Workload API, the file output and the verify API.
type view struct {
	index     uint64
	snapshot  *workload.Snapshot
	trust     *verify.Trust
	parseErrs int
}

// viewCache parses the stored bundles once per applied index.
type viewCache struct {
	n       *Node
	mu      sync.Mutex
	current *view
}

// get returns the view of the current state, parsing it when the index moved.
func (c *viewCache) get() *view {
	index := c.n.store.AppliedIndex()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current != nil && c.current.index == index {
		return c.current
	}
	c.current = c.n.buildView(index)
	return c.current
}

func (n *Node) buildView(index uint64) *view {
	v := &view{
		index:    index,
		snapshot: &workload.Snapshot{Version: index, Federated: map[spiffeid.TrustDomain]*bundle.Bundle{}},
		trust: &verify.Trust{Federated: map[spiffeid.TrustDomain]*bundle.Bundle{},
			AllowedIDPrefixes: map[spiffeid.TrustDomain][]string{}},
	}
	if rec, ok := n.store.LocalBundle(); ok {
		if b, err := parseRecord(rec); err == nil {
			v.snapshot.Local, v.trust.Local = b, b
		} else {
			v.parseErrs++
		}
	}
	for _, rec := range n.store.FederatedBundles() {
		b, err := parseRecord(rec)
		if err != nil {
			v.parseErrs++
			continue
		}
		v.snapshot.Federated[b.TrustDomain] = b
		v.trust.Federated[b.TrustDomain] = b
	}
	for _, rel := range n.store.Relationships() {
		td := mustTD(rel.TrustDomain)
		// A nil bundle marks a relationship whose bundle has not been fetched yet,
		// so the verifier rejects its SVIDs with no_bundle, not
		// unknown_trust_domain.
		if _, ok := v.trust.Federated[td]; !ok {
			v.trust.Federated[td] = nil
		}
		if len(rel.AllowedIDPrefixes) > 0 {
			v.trust.AllowedIDPrefixes[td] = rel.AllowedIDPrefixes
		}
	}
	return v
}

// workloadSource adapts the node to workload.Source. It returns no snapshot
// until the store's state is current, which the Workload API reports as
// Unavailable and the file output as nothing to write.
type workloadSource struct{ n *Node }

func (s workloadSource) Snapshot() *workload.Snapshot {
	if !s.n.stateCurrent() {
		return nil
	}
	return s.n.views.get().snapshot
}

func (s workloadSource) Subscribe() (<-chan struct{}, func()) { return s.n.store.Subscribe() }

// jwtValidator adapts the verifier to the Workload API's ValidateJWTSVID. It
// rejects every token until the store's state is current.
type jwtValidator struct {
	n *Node
	v *verify.Verifier
}

func (j jwtValidator) ValidateJWTSVID(token, audience string) (string, map[string]any, error) {
	if !j.n.stateCurrent() {
		return "", nil, errNotCurrent
	}
	result, err := j.v.ValidateJWTSVID(token, audience)
	if err != nil {
		return "", nil, err
	}
	return result.SPIFFEID, result.Claims, nil
}

// startConsumers starts the verify API, the Workload API and the file output,
// each only when configured.
func (n *Node) startConsumers(ctx context.Context) error {
	verifier, err := verify.NewVerifier(verify.TrustFunc(func() *verify.Trust {
		return n.views.get().trust
	}), verify.WithClockSkew(n.cfg.Consumers.VerifyClockSkew))
	if err != nil {
		return err
	}
	n.verifier = verifier
	c := n.cfg.Consumers
	if c.VerifyAddress != "" {
		logger := n.log.With("component", "verify")
		server, err := federation.NewEndpointServer(federation.EndpointConfig{
			Name:           "verify API",
			Address:        c.VerifyAddress,
			Handler:        n.gateVerify(verify.NewHandler(verifier, logger)),
			GetCertificate: n.getCertificate,
			Logger:         logger,

			ReadTimeout:           c.VerifyReadTimeout,
			MaxConnections:        c.VerifyMaxConnections,
			MaxConnectionsSetting: "verify.max_connections",
		})
		if err != nil {
			return err
		}
		if err := server.Start(); err != nil {
			return fmt.Errorf("node: verify.address: %w", err)
		}
		n.verifyServer = server
	}
	if c.WorkloadAPISocket != "" {
		if err := n.startWorkloadAPI(jwtValidator{n: n, v: verifier}); err != nil {
			return err
		}
	}
	if writer := n.output; writer != nil {
		n.goRun(func() {
			if err := writer.Run(ctx, workloadSource{n: n}); err != nil && ctx.Err() == nil {
				n.log.Error("file output stopped", "error", err, "directory", c.OutputDirectory)
			}
		})
	}
	return nil
}

// lockOutput takes the output directory's lock before anything else starts, so
// that a second node given the same directory fails before it creates keys or
// Raft state, and never removes the first node's files.
func (n *Node) lockOutput() error {
	dir := n.cfg.Consumers.OutputDirectory
	if dir == "" {
		return nil
	}
	writer := &output.Writer{Dir: dir, Logger: n.log.With("component", "output"),
		Observe: func(err error) { n.metrics.ObserveOutputWrite(err, time.Now()) }}
	if err := writer.Lock(); err != nil {
		return fmt.Errorf("node: output.directory: %w", err)
	}
	n.output = writer
	return nil
}

func (n *Node) startWorkloadAPI(validator workload.JWTValidator) error {
	path := n.cfg.Consumers.WorkloadAPISocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("node: workload_api.socket_path: create directory: %w", err)
	}
	svids, err := n.workloadSVIDConfig()
	if err != nil {
		return err
	}
	server, err := workload.NewServer(workload.Config{
		Source:    workloadSource{n: n},
		Validator: validator,
		Logger:    n.log.With("component", "workload"),
		SVIDs:     svids,
	})
	if err != nil {
		return err
	}
	listener, err := workload.ListenUnix(path)
	if err != nil {
		return fmt.Errorf("node: workload_api.socket_path: %w", err)
	}
	n.workloadServer = server
	n.goRun(func() {
		if err := server.ServeListener(listener); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("workload API stopped", "error", err)
		}
	})
	return nil
}

// stopConsumers stops the listeners started by startConsumers.
func (n *Node) stopConsumers(ctx context.Context) []error {
	var errs []error
	if n.workloadServer != nil {
		n.workloadServer.Stop()
	}
	if n.verifyServer != nil {
		errs = append(errs, n.verifyServer.Shutdown(ctx))
	}
	return errs
}

// workloadSVIDConfig returns the Workload API's SVID settings, or nil when
// workload_api.svid_path_template is empty. config.Validate has checked the
// template against the authority type and the mint prefixes.
func (n *Node) workloadSVIDConfig() (*workload.SVIDConfig, error) {
	c := n.cfg.Consumers
	if c.WorkloadSVIDPathTemplate == "" {
		return nil, nil
	}
	if n.builtin == nil {
		return nil, errors.New("node: workload_api.svid_path_template needs the built-in " +
			"authority, but authority.type is file")
	}
	template, err := config.ParseIDPathTemplate(c.WorkloadSVIDPathTemplate)
	if err != nil {
		return nil, fmt.Errorf("node: workload_api.svid_path_template: %w", err)
	}
	prefixes := n.cfg.Authority.MintAllowedIDPrefixes
	return &workload.SVIDConfig{
		Issuer: n.builtin,
		IDFor: func(caller workload.Caller) (spiffeid.ID, error) {
			id, err := spiffeid.FromPath(n.td, template.Expand(caller.UID, caller.GID))
			if err != nil {
				return spiffeid.ID{}, err
			}
			// The same policy as the admin API's mint, checked again per ID.
			if err := authority.CheckMintID(id, n.endpointID); err != nil {
				return spiffeid.ID{}, err
			}
			if !idAllowed(id, prefixes) {
				return spiffeid.ID{}, fmt.Errorf("SPIFFE ID %s is outside "+
					"authority.mint_allowed_id_prefixes", id)
			}
			return id, nil
		},
		TTL:         c.WorkloadSVIDTTL,
		AllowedUIDs: c.WorkloadSVIDAllowedUIDs,
		Issued:      n.metrics.CountWorkloadSVID,
	}, nil
}
