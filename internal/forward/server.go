package forward

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/bundlex/bundlex/raft"
)

// applyPath is the route of forwarded store commands.
const applyPath = "/forward/v1/apply"

// maxApplyBody bounds a forwarded command, in bytes.
const maxApplyBody = 8 << 20

// sentinels maps error kinds on the wire to the store's sentinel errors.
var sentinels = map[string]error{
	"conflict":          raft.ErrConflict,
	"exists":            raft.ErrExists,
	"not_found":         raft.ErrNotFound,
	"sequence_rollback": raft.ErrSequenceRollback,
	"not_leader":        raft.ErrNotLeader,
	"timeout":           raft.ErrTimeout,
}

func kindOf(err error) string {
	for kind, sentinel := range sentinels {
		if errors.Is(err, sentinel) {
			return kind
		}
	}
	return "internal"
}

// Handler returns the forwarding routes: store commands on applyPath, and every
// other path to next (the admin API, for requests a follower forwards).
func Handler(apply func(ctx context.Context, cmd raft.Command) error, next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+applyPath, func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxApplyBody))
		if err == nil {
			var cmd raft.Command
			if cmd, err = raft.DecodeCommand(data); err == nil {
				err = apply(r.Context(), cmd)
			}
		}
		if err == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(applyError{Kind: kindOf(err), Message: err.Error()})
	})
	mux.Handle("/", next)
	return mux
}
