// Package telemetry provides the node's logging, metrics and health endpoints.
//
// Logs go through log/slog. HCLogger and StdLogger adapt slog to the loggers
// that hashicorp/raft (go-hclog) and memberlist (the standard library's
// *log.Logger) expect, so their messages reach the same handler with levels
// and key/value pairs kept. Metrics live in a Prometheus registry of their own,
// served together with /healthz and /readyz by HealthServer.
package telemetry
