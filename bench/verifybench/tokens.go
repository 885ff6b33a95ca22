package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bundlex/bundlex/internal/admin"
	"github.com/bundlex/bundlex/internal/verify"
)

const (
	// audience is the aud of every minted token and the audience every request
	// expects.
	audience = "bench-service"
	// mintWorkers is how many admin API requests mint tokens at once.
	mintWorkers = 8
)

// token is one minted JWT-SVID with the request body that verifies it.
type token struct {
	jwt  string
	body []byte
	// idMember is `"spiffe_id":"<sub>"`, which a valid response contains.
	idMember []byte
}

// mintTokens mints one token for each SPIFFE ID through the node's admin API, as
// `bundlex svid mint jwt` does.
func mintTokens(ctx context.Context, client *admin.Client, ids []string) ([]token, error) {
	tokens := make([]token, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, mintWorkers)
	for range mintWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				svid, err := client.MintJWTSVID(ctx, admin.MintJWTSVIDRequest{
					SPIFFEID: ids[i], Audience: []string{audience},
					TTLSeconds: int64(tokenTTL.Seconds())})
				if err != nil {
					errs <- fmt.Errorf("verifybench: mint a JWT-SVID for %s: %w", ids[i], err)
					return
				}
				if tokens[i], err = newToken(svid.Token, ids[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return tokens, ctx.Err()
}

func newToken(jwt, id string) (token, error) {
	body, err := json.Marshal(verify.JWTSVIDRequest{Token: jwt,
		Audience: verify.Audience{audience}})
	if err != nil {
		return token{}, fmt.Errorf("verifybench: encode a verify request: %w", err)
	}
	member, err := json.Marshal(id)
	if err != nil {
		return token{}, fmt.Errorf("verifybench: encode %s: %w", id, err)
	}
	return token{jwt: jwt, body: body,
		idMember: append([]byte(`"spiffe_id":`), member...)}, nil
}

// spiffeIDs returns count IDs of the benchmark's trust domain under path.
func spiffeIDs(path string, count int) []string {
	ids := make([]string, count)
	for i := range ids {
		ids[i] = fmt.Sprintf("spiffe://%s/%s/%d", trustDomain, path, i)
	}
	return ids
}

// populations are the tokens of every measured token population.
type populations struct {
	// repeated is the single token of the repeated population.
	repeated token
	// distinct are used in turn through cursor, shared by every population that
	// sends a new token. There are more than the Verifier's result cache holds,
	// so a token comes round again only after so many other new ones that its
	// cache entry is gone: every request with one of them misses the cache.
	distinct []token
	cursor   atomic.Uint64
	// agents are the long-lived tokens of the mixed population.
	agents []token
}

// nextDistinct returns the next token of the distinct pool.
func (p *populations) nextDistinct() *token {
	return &p.distinct[(p.cursor.Add(1)-1)%uint64(len(p.distinct))]
}

func mintPopulations(ctx context.Context, client *admin.Client, s settings) (
	*populations, error) {
	p := &populations{}
	repeated, err := mintTokens(ctx, client, spiffeIDs("repeated", 1))
	if err != nil {
		return nil, err
	}
	p.repeated = repeated[0]
	if p.agents, err = mintTokens(ctx, client, spiffeIDs("agents", s.agents)); err != nil {
		return nil, err
	}
	if p.distinct, err = mintTokens(ctx, client, spiffeIDs("workloads", s.distinct)); err != nil {
		return nil, err
	}
	return p, nil
}
