package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// get returns the status code and body of a GET to the health server.
func get(t *testing.T, address, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + address + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHealthzAlwaysOK(t *testing.T) {
	server := startHealth(t, func() error { return errors.New("no leader") }, nil)
	code, body := get(t, server.Addr(), "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
}

func TestReadyzFlips(t *testing.T) {
	var readiness atomic.Pointer[error]
	notReady := errors.New("no Raft leader known yet")
	readiness.Store(&notReady)
	logger, logs := newJSONLogger(slog.LevelInfo)
	server := NewHealthServer("127.0.0.1:0", func() error { return *readiness.Load() },
		nil, logger)
	require.NoError(t, server.Start())
	t.Cleanup(func() { require.NoError(t, server.Shutdown(context.Background())) })

	code, body := get(t, server.Addr(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "not ready: no Raft leader known yet\n", body)

	var ready error
	readiness.Store(&ready)
	code, body = get(t, server.Addr(), "/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready\n", body)

	lost := errors.New("store closed")
	readiness.Store(&lost)
	code, body = get(t, server.Addr(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "not ready: store closed\n", body)

	require.NotNil(t, findMessage(t, logs, "node is ready"))
	notReadyRecord := findMessage(t, logs, "node is not ready")
	require.NotNil(t, notReadyRecord)
	require.Equal(t, "store closed", notReadyRecord["error"])
}

func findMessage(t *testing.T, buf *syncBuffer, msg string) map[string]any {
	t.Helper()
	for _, record := range records(t, buf) {
		if record["msg"] == msg {
			return record
		}
	}
	return nil
}

func TestHealthWithoutMetrics(t *testing.T) {
	server := startHealth(t, nil, nil)
	code, _ := get(t, server.Addr(), "/metrics")
	require.Equal(t, http.StatusNotFound, code)
	code, body := get(t, server.Addr(), "/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready\n", body)
}

func TestHealthRejectsOtherMethods(t *testing.T) {
	server := startHealth(t, nil, NewMetrics())
	resp, err := http.Post("http://"+server.Addr()+"/healthz", "text/plain", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestHealthShutdownClosesListener(t *testing.T) {
	logger, _ := newJSONLogger(slog.LevelInfo)
	server := NewHealthServer("127.0.0.1:0", nil, nil, logger)
	require.Equal(t, "", server.Addr())
	require.NoError(t, server.Shutdown(context.Background()))
	require.NoError(t, server.Start())
	address := server.Addr()
	code, _ := get(t, address, "/healthz")
	require.Equal(t, http.StatusOK, code)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, server.Shutdown(ctx))
	require.NoError(t, server.Shutdown(ctx))
	_, err := net.DialTimeout("tcp", address, time.Second)
	require.Error(t, err)
}

func TestHealthStartErrors(t *testing.T) {
	logger, _ := newJSONLogger(slog.LevelInfo)
	err := NewHealthServer("", nil, nil, logger).Start()
	require.EqualError(t, err, "telemetry: health server has no address: "+
		"leave it unstarted when health.address is empty")

	occupied := startHealth(t, nil, nil)
	err = NewHealthServer(occupied.Addr(), nil, nil, logger).Start()
	require.ErrorContains(t, err, "telemetry: listen for health server on "+occupied.Addr())
	require.ErrorContains(t, err, "free the port or change health.address")

	err = occupied.Start()
	require.EqualError(t, err, "telemetry: health server on "+occupied.Addr()+" already started")
}
