package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/bundlex/bundlex/internal/verify"
)

// Names of the measured variants, in the order in which each round runs them.
const (
	variantInProcess = "go-spiffe in process"
	variantRepeated  = "verify API, repeated token"
	variantDistinct  = "verify API, distinct tokens"
	variantMixed     = "verify API, mixed tokens"
)

var variantNames = []string{variantInProcess, variantRepeated, variantDistinct,
	variantMixed}

// requestTimeout bounds one verify API request, far above its usual milliseconds.
const requestTimeout = 30 * time.Second

// measurement is one variant's outcome in one round.
type measurement struct {
	verifications int64
	elapsed       time.Duration
	// selfCPU is the CPU time of this process: the verifications of the in-process
	// variant, the clients of the API variants.
	selfCPU time.Duration
	// serverCPU is the CPU time of the node's process.
	serverCPU time.Duration
	// machineCPU is the CPU time of the whole machine, all processes together.
	machineCPU time.Duration
}

func (m measurement) rate() float64 {
	return float64(m.verifications) / m.elapsed.Seconds()
}

// otherCores returns how many cores other processes kept busy on average:
// the machine's CPU time less this process's and the node's, per second.
func (m measurement) otherCores() float64 {
	return (m.machineCPU - m.selfCPU - m.serverCPU).Seconds() / m.elapsed.Seconds()
}

// perVerification returns d per verification in microseconds.
func (m measurement) perVerification(d time.Duration) float64 {
	return float64(d.Microseconds()) / float64(m.verifications)
}

// cpuSnapshot is the time and the CPU times of both processes and of the
// machine at one moment.
type cpuSnapshot struct {
	at                           time.Time
	verifications                int64
	selfCPU, nodeCPU, machineCPU time.Duration
}

func takeSnapshot(n *node, verifications int64) (cpuSnapshot, error) {
	self, err := selfCPUTime()
	if err != nil {
		return cpuSnapshot{}, err
	}
	server, err := n.cpuTime()
	if err != nil {
		return cpuSnapshot{}, err
	}
	machine, err := machineCPUTime()
	if err != nil {
		return cpuSnapshot{}, err
	}
	return cpuSnapshot{at: time.Now(), verifications: verifications, selfCPU: self,
		nodeCPU: server, machineCPU: machine}, nil
}

// runClosedLoop runs one goroutine per op, each calling its op again as soon as
// the previous call returns. It counts the calls of the measured period, which
// starts after s.warmup and lasts s.duration, and stops at the first error.
func runClosedLoop(ctx context.Context, s settings, n *node, ops []func() error) (
	measurement, error) {
	var stop atomic.Bool
	var count atomic.Int64
	errs := make(chan error, len(ops))
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Go(func() {
			for !stop.Load() {
				if err := op(); err != nil {
					errs <- err
					return
				}
				count.Add(1)
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(s.warmup); err != nil {
		return measurement{}, err
	}
	start, err := takeSnapshot(n, count.Load())
	if err != nil {
		return measurement{}, err
	}
	if err := wait(s.duration); err != nil {
		return measurement{}, err
	}
	end, err := takeSnapshot(n, count.Load())
	if err != nil {
		return measurement{}, err
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		return measurement{}, err
	default:
	}
	m := measurement{
		verifications: end.verifications - start.verifications,
		elapsed:       end.at.Sub(start.at),
		selfCPU:       end.selfCPU - start.selfCPU,
		serverCPU:     end.nodeCPU - start.nodeCPU,
		machineCPU:    end.machineCPU - start.machineCPU,
	}
	if m.verifications == 0 {
		return m, fmt.Errorf("verifybench: no verification completed in %s; raise "+
			"-duration", s.duration)
	}
	return m, nil
}

// inProcessOps returns the goroutines of the in-process variant: go-spiffe
// v2's jwtsvid.ParseAndValidate on the node's JWT bundle. go-spiffe keeps no
// results, so every call checks a signature, and the tokens are taken in turn
// from the distinct pool through a cursor of their own.
func inProcessOps(s settings, n *node, p *populations) []func() error {
	source := jwtbundle.NewSet(n.bundle.JWTBundle())
	expected := []string{audience}
	var cursor atomic.Uint64
	ops := make([]func() error, s.concurrency)
	for i := range ops {
		ops[i] = func() error {
			tok := p.distinct[(cursor.Add(1)-1)%uint64(len(p.distinct))]
			if _, err := jwtsvid.ParseAndValidate(tok.jwt, source, expected); err != nil {
				return fmt.Errorf("verifybench: go-spiffe rejected a token of the node: %w",
					err)
			}
			return nil
		}
	}
	return ops
}

// apiClients returns one HTTP/1.1 client per concurrent request, each with a
// single keep-alive connection to the verify API.
func apiClients(s settings, n *node) []*http.Client {
	clients := make([]*http.Client, s.concurrency)
	for i := range clients {
		clients[i] = &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
			TLSClientConfig:     n.tlsConfig(),
			MaxIdleConnsPerHost: 1,
			MaxConnsPerHost:     1,
			DisableCompression:  true,
		}}
	}
	return clients
}

// apiOps returns the goroutines of an API variant. pick chooses the token of
// each request.
func apiOps(n *node, clients []*http.Client, pick func() *token) []func() error {
	url := "https://" + n.verifyAddr + verify.JWTSVIDPath
	ops := make([]func() error, len(clients))
	for i, client := range clients {
		var response bytes.Buffer
		ops[i] = func() error { return postVerify(client, url, pick(), &response) }
	}
	return ops
}

var validPrefix = []byte(`{"valid":true`)

// postVerify sends one verify request and checks that the response accepts the
// token for its own SPIFFE ID. response is reused between the calls of one
// goroutine.
func postVerify(client *http.Client, url string, tok *token, response *bytes.Buffer) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(tok.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("verifybench: POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	response.Reset()
	if _, err := response.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("verifybench: read the response of POST %s: %w", url, err)
	}
	body := response.Bytes()
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, validPrefix) ||
		!bytes.Contains(body, tok.idMember) {
		return fmt.Errorf("verifybench: POST %s returned %s, expected a valid result "+
			"with %s: %s", url, resp.Status, tok.idMember, body)
	}
	return nil
}

// pickers returns how each API variant chooses its tokens.
func pickers(s settings, p *populations) map[string]func() *token {
	return map[string]func() *token{
		variantRepeated: func() *token { return &p.repeated },
		variantDistinct: p.nextDistinct,
		variantMixed: func() *token {
			if rand.Float64() < s.mixNew {
				return p.nextDistinct()
			}
			return &p.agents[rand.IntN(len(p.agents))]
		},
	}
}

// runRounds measures every variant once per round, in turn.
func runRounds(ctx context.Context, s settings, n *node, p *populations) (
	[]map[string]measurement, error) {
	clients := apiClients(s, n)
	defer func() {
		for _, client := range clients {
			client.CloseIdleConnections()
		}
	}()
	pick := pickers(s, p)
	rounds := make([]map[string]measurement, s.rounds)
	for round := range rounds {
		rounds[round] = map[string]measurement{}
		for _, name := range variantNames {
			ops := inProcessOps(s, n, p)
			if name != variantInProcess {
				ops = apiOps(n, clients, pick[name])
			}
			logProgress("measuring", "round", round+1, "variant", name)
			m, err := runClosedLoop(ctx, s, n, ops)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, name, err)
			}
			rounds[round][name] = m
		}
	}
	return rounds, nil
}
