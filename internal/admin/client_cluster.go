package admin

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// ClusterMembers returns the gossip members with their Raft suffrage.
func (c *Client) ClusterMembers(ctx context.Context) ([]ClusterMember, error) {
	return call[[]ClusterMember](ctx, c, http.MethodGet, "/v1/cluster/members", nil)
}

// ClusterRaft returns the node's view of the Raft cluster.
func (c *Client) ClusterRaft(ctx context.Context) (RaftStatus, error) {
	return call[RaftStatus](ctx, c, http.MethodGet, "/v1/cluster/raft", nil)
}

// ClusterLeave makes the node leave the cluster gracefully.
func (c *Client) ClusterLeave(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/leave", struct{}{}, nil)
}

// ClusterRemove removes a server from the Raft configuration.
func (c *Client) ClusterRemove(ctx context.Context, node string) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/remove", RemoveServerRequest{Node: node}, nil)
}

// SnapshotSave returns a snapshot file of the cluster's state, taken on the leader.
func (c *Client) SnapshotSave(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/snapshot", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(http.MethodGet, "/v1/snapshot", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSnapshotSize+1))
	if err != nil {
		return nil, c.transportError(http.MethodGet, "/v1/snapshot", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeAPIError(http.MethodGet, "/v1/snapshot", resp.StatusCode, data)
	}
	return data, nil
}

// SnapshotRestore sends a snapshot file to be restored on the whole cluster.
func (c *Client) SnapshotRestore(ctx context.Context, file []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+"/v1/snapshot",
		bytes.NewReader(file))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(http.MethodPut, "/v1/snapshot", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeAPIError(http.MethodPut, "/v1/snapshot", resp.StatusCode, data)
	}
	return nil
}
