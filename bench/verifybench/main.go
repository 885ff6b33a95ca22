// Command verifybench measures JWT-SVID verifications per second through the
// verify API of a real bundlex node against go-spiffe's in-process
// jwtsvid.ParseAndValidate on the same bundle, and the Workload API push
// latency after a bundle change.
//
// Usage:
//
//	verifybench [-duration 5s] [-warmup 1s] [-rounds 3] [-concurrency 64]
//	            [-distinct 20000] [-agents 1000] [-mix-new 0.01]
//	            [-push-changes 200] [-push-watchers 1,10,100] [-bundlex PATH]
//	            [-dir DIR] [-short]
//
// It builds ./cmd/bundlex, unless -bundlex names a binary. It starts `bundlex
// server` as a separate process with the built-in authority, the verify API on
// 127.0.0.1 and the Workload API on a Unix socket. Every token is minted through
// the node's admin API before timing starts. Each round then runs, in turn:
// go-spiffe in this process with -concurrency goroutines, and the verify API over
// TLS with -concurrency HTTP/1.1 clients of one keep-alive connection each, for
// three token populations: one repeated token, distinct tokens that always miss
// the verifier's result cache, and a mix of -agents long-lived tokens with a
// share of new ones. The results go to stdout as Markdown and the progress to
// stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/bundlex/bundlex/internal/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := run(ctx, os.Args[1:])
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	r.write(os.Stdout)
}

// maxConcurrency is the largest -concurrency, a bound that keeps a typing error
// from opening thousands of connections.
const maxConcurrency = 1024

// settings are the flags of a run.
type settings struct {
	duration, warmup    time.Duration
	rounds, concurrency int
	distinct, agents    int
	mixNew              float64
	pushChanges         int
	pushWatchers        []int
	pushWatchersFlag    string
	bundlex, dir        string
	short               bool
}

func parseSettings(args []string) (settings, error) {
	var s settings
	flags := flag.NewFlagSet("verifybench", flag.ContinueOnError)
	flags.DurationVar(&s.duration, "duration", 5*time.Second,
		"measured time of each variant in each round, after the warm-up")
	flags.DurationVar(&s.warmup, "warmup", time.Second,
		"time at the start of each measurement whose verifications are not counted")
	flags.IntVar(&s.rounds, "rounds", 3, "how many times every variant runs, in turn")
	flags.IntVar(&s.concurrency, "concurrency", 64,
		"concurrent goroutines in process, and concurrent API clients")
	flags.IntVar(&s.distinct, "distinct", 20000, fmt.Sprintf("tokens of the distinct "+
		"population; at least the result cache size (%d) plus twice -concurrency "+
		"less one", verify.DefaultResultCacheSize))
	flags.IntVar(&s.agents, "agents", 1000, "long-lived tokens of the mixed population")
	flags.Float64Var(&s.mixNew, "mix-new", 0.01, "share of requests of the mixed "+
		"population that carry a token the node has not verified yet, from 0 to 1")
	flags.IntVar(&s.pushChanges, "push-changes", 200,
		"bundle changes per number of Workload API watchers; 0 skips the push latency")
	flags.StringVar(&s.pushWatchersFlag, "push-watchers", "1,10,100",
		"comma-separated numbers of Workload API watchers")
	flags.StringVar(&s.bundlex, "bundlex", "",
		"bundlex binary to start (default: build ./cmd/bundlex)")
	flags.StringVar(&s.dir, "dir", os.TempDir(),
		"directory under which the node's directory is created and removed")
	flags.BoolVar(&s.short, "short", false, "run a smoke test of a few seconds: 1 round "+
		"of 300ms, the fewest distinct tokens, 100 agents, 5 push changes with 1 "+
		"watcher; flags given explicitly still apply")
	if err := flags.Parse(args); err != nil {
		return s, err
	}
	if flags.NArg() > 0 {
		return s, fmt.Errorf("verifybench: unexpected argument %q; every setting is a "+
			"flag, see -help", flags.Arg(0))
	}
	if s.short {
		s.applyShort(flags)
	}
	return s, s.check()
}

// applyShort sets the smoke-test values of the flags not given explicitly.
func (s *settings) applyShort(flags *flag.FlagSet) {
	given := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { given[f.Name] = true })
	set := func(name string, apply func()) {
		if !given[name] {
			apply()
		}
	}
	set("duration", func() { s.duration = 300 * time.Millisecond })
	set("warmup", func() { s.warmup = 200 * time.Millisecond })
	set("rounds", func() { s.rounds = 1 })
	set("distinct", func() { s.distinct = minDistinct(s.concurrency) })
	set("agents", func() { s.agents = 100 })
	set("push-changes", func() { s.pushChanges = 5 })
	set("push-watchers", func() { s.pushWatchersFlag = "1" })
}

// minDistinct is the smallest distinct population whose every request misses
// the result cache. A token comes round again after distinct-1 other new
// tokens. Up to concurrency-1 of them may enter the cache before the token's
// first request has put it there, and up to concurrency-1 after its second
// request has looked it up. The rest, at least DefaultResultCacheSize, entered
// in between, and a cache that takes that many new entries after a token has
// been cleared since, because it is cleared when full.
func minDistinct(concurrency int) int {
	return verify.DefaultResultCacheSize + 2*concurrency - 1
}

func (s *settings) check() error {
	for field := range strings.SplitSeq(s.pushWatchersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 || n > maxConcurrency {
			return fmt.Errorf("verifybench: invalid -push-watchers value %q: use integers "+
				"from 1 to %d separated by commas, such as 1,10", s.pushWatchersFlag,
				maxConcurrency)
		}
		s.pushWatchers = append(s.pushWatchers, n)
	}
	switch {
	case s.duration <= 0:
		return fmt.Errorf("verifybench: -duration is %s; set a positive duration", s.duration)
	case s.warmup < 0:
		return fmt.Errorf("verifybench: -warmup is %s; set 0 or a positive duration", s.warmup)
	case s.rounds < 1:
		return fmt.Errorf("verifybench: -rounds is %d; set at least 1", s.rounds)
	case s.concurrency < 1 || s.concurrency > maxConcurrency:
		return fmt.Errorf("verifybench: -concurrency is %d; set 1 to %d", s.concurrency,
			maxConcurrency)
	case s.distinct < minDistinct(s.concurrency):
		return fmt.Errorf("verifybench: -distinct is %d; set at least %d, the result "+
			"cache size %d plus twice -concurrency less one, so that every request "+
			"misses the cache", s.distinct, minDistinct(s.concurrency),
			verify.DefaultResultCacheSize)
	case s.agents < 1:
		return fmt.Errorf("verifybench: -agents is %d; set at least 1", s.agents)
	case !(s.mixNew >= 0 && s.mixNew <= 1):
		return fmt.Errorf("verifybench: -mix-new is %v; set 0 to 1", s.mixNew)
	case s.pushChanges < 0:
		return fmt.Errorf("verifybench: -push-changes is %d; set 0 or more", s.pushChanges)
	}
	return nil
}

// run measures everything that the settings in args ask for.
func run(ctx context.Context, args []string) (*report, error) {
	s, err := parseSettings(args)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.dir, "vb")
	if err != nil {
		return nil, fmt.Errorf("verifybench: create a directory under %s: %w; set -dir "+
			"to a writable directory with a short path", s.dir, err)
	}
	defer os.RemoveAll(dir)
	binary := s.bundlex
	if binary == "" {
		logProgress("building bundlex")
		if binary, err = buildBundlex(ctx, dir); err != nil {
			return nil, err
		}
	}
	logProgress("starting the node", "dir", dir)
	n, err := startNode(ctx, binary, dir)
	if err != nil {
		return nil, err
	}
	defer n.stop()
	r, err := measureAll(ctx, s, n)
	if err != nil {
		return nil, fmt.Errorf("%w\nnode log:\n%s", err, n.logTail())
	}
	return r, nil
}

func measureAll(ctx context.Context, s settings, n *node) (*report, error) {
	r := &report{settings: s, loadBefore: loadAverage()}
	logProgress("minting tokens through the admin API", "count", 1+s.agents+s.distinct)
	start := time.Now()
	p, err := mintPopulations(ctx, n.admin, s)
	if err != nil {
		return nil, err
	}
	r.mintTime = time.Since(start)
	if r.idleNodeCPU, err = idleCPU(ctx, n); err != nil {
		return nil, err
	}
	if r.rounds, err = runRounds(ctx, s, n, p); err != nil {
		return nil, err
	}
	if s.pushChanges > 0 {
		if r.push, err = measurePush(ctx, s, n); err != nil {
			return nil, err
		}
	}
	r.loadAfter = loadAverage()
	return r, nil
}

// idleCPUPeriod is how long the node's CPU time is sampled without load.
const idleCPUPeriod = time.Second

// idleCPU returns the node's CPU time per second while nothing calls it: Raft,
// gossip and timers, which every measurement of the node's CPU also contains.
func idleCPU(ctx context.Context, n *node) (time.Duration, error) {
	before, err := n.cpuTime()
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(idleCPUPeriod):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	after, err := n.cpuTime()
	if err != nil {
		return 0, err
	}
	return (after - before) * time.Second / idleCPUPeriod, nil
}

// progress writes progress lines to stderr.
var progress = slog.New(slog.NewTextHandler(os.Stderr, nil))

func logProgress(msg string, args ...any) { progress.Info(msg, args...) }

// loadAverage returns the three load averages of /proc/loadavg.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}
