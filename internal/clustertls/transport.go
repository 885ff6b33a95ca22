package clustertls

import (
	"time"

	"github.com/bundlex/bundlex/internal/telemetry"
	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
)

// NewTransport wraps layer in a hashicorp/raft NetworkTransport for
// raft.Config.Transport. maxPool is how many idle connections are kept per
// peer and timeout bounds each write, as in hraft.NewNetworkTransportWithLogger.
// A nil logger routes the transport's log into the layer's slog logger.
// Closing the transport closes the layer.
func NewTransport(layer *StreamLayer, maxPool int, timeout time.Duration,
	logger hclog.Logger) *hraft.NetworkTransport {
	if logger == nil {
		logger = telemetry.HCLogger(layer.logger, "raft-transport")
	}
	return hraft.NewNetworkTransportWithLogger(layer, maxPool, timeout, logger)
}
