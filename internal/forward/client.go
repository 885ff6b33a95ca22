package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/bundlex/bundlex/raft"
)

// Client sends forwarded requests to other nodes through the Mux.
type Client struct {
	http *http.Client
}

// idleConnTimeout closes pooled forwarding connections after this long unused,
// so that few requests go out on a connection to a node that went away.
const idleConnTimeout = 30 * time.Second

// NewClient returns a client whose connections go through mux. The host of each
// request URL is the Raft address of the target node. responseTimeout bounds the
// wait for the leader's response, so that a request to a leader that became
// unreachable fails instead of waiting for the caller to give up.
func NewClient(mux *Mux, dialTimeout, responseTimeout time.Duration) *Client {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return mux.DialForward(addr, dialTimeout)
		},
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: responseTimeout,
	}
	return &Client{http: &http.Client{Transport: transport, Timeout: dialTimeout + responseTimeout}}
}

// Do sends req to the node at raftAddr and returns its response.
func (c *Client) Do(raftAddr string, req *http.Request) (*http.Response, error) {
	req.URL.Scheme = "http"
	req.URL.Host = raftAddr
	req.Host = raftAddr
	req.RequestURI = ""
	return c.http.Do(req)
}

// applyError is the body of a failed forwarded apply.
type applyError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Apply forwards a store command to the leader at raftAddr. Errors of the
// leader's store come back wrapping the same raft sentinel errors.
func (c *Client) Apply(ctx context.Context, raftAddr string, cmd raft.Command) error {
	body, err := raft.EncodeCommand(cmd)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://leader"+applyPath,
		bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.Do(raftAddr, req)
	if err != nil {
		return fmt.Errorf("forward: send write to leader %s: %w: %w", raftAddr, raft.ErrNotLeader, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var failure applyError
	if json.Unmarshal(data, &failure) != nil {
		return fmt.Errorf("forward: leader %s responded with %s: %s", raftAddr, resp.Status, data)
	}
	if sentinel := sentinels[failure.Kind]; sentinel != nil {
		return fmt.Errorf("%w: %s", sentinel, failure.Message)
	}
	return fmt.Errorf("forward: leader %s: %s", raftAddr, failure.Message)
}
