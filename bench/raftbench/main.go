// Command raftbench measures bundlex writes on a three-node Raft cluster on
// loopback against raw hashicorp/raft with the same stores, and the time a
// cluster of node processes needs to accept a write after its leader is killed.
//
// Usage:
//
//	raftbench [-duration 2s] [-warmup 500ms] [-writers 1,64] [-writes bundle,relationship]
//	          [-rounds 3] [-trials 5] [-extra-baselines] [-dir DIR] [-cpuprofile FILE]
//	          [-node-log-level off]
//
// The results go to stdout as Markdown and the progress goes to stderr. The
// subcommand `raftbench node` runs one node of the failover cluster, and raftbench
// starts it itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "node" {
		err = runNode(os.Args[2:])
	} else {
		err = runBench(os.Args[1:])
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// benchSettings are the flags of a benchmark run.
type benchSettings struct {
	duration, warmup time.Duration
	writers          []int
	writersFlag      string
	kinds            []workloadKind
	rounds, trials   int
	dir, cpuProfile  string
	nodeLogLevel     string
	extraBaselines   bool
}

func parseSettings(args []string) (benchSettings, error) {
	var s benchSettings
	flags := flag.NewFlagSet("raftbench", flag.ContinueOnError)
	flags.DurationVar(&s.duration, "duration", 2*time.Second,
		"measured time of each run, after the warm-up")
	flags.DurationVar(&s.warmup, "warmup", 500*time.Millisecond,
		"time at the start of each run whose writes are not counted")
	flags.StringVar(&s.writersFlag, "writers", "1,64",
		"comma-separated numbers of concurrent writers")
	kindsFlag := flags.String("writes", "bundle,relationship",
		"comma-separated kinds of write to measure: bundle, relationship")
	flags.IntVar(&s.rounds, "rounds", 3,
		"how many times each system runs each configuration, the systems taking turns")
	flags.IntVar(&s.trials, "trials", 5, "failover trials; 0 skips the failover measurement")
	flags.StringVar(&s.dir, "dir", os.TempDir(),
		"directory under which the nodes' data directories are created and removed")
	flags.StringVar(&s.cpuProfile, "cpuprofile", "",
		"file to write a CPU profile of the write measurements to")
	flags.StringVar(&s.nodeLogLevel, "node-log-level", "off", "level of the Raft logs "+
		"that the failover node processes write to stderr: trace, debug, info, warn, "+
		"error or off")
	flags.BoolVar(&s.extraBaselines, "extra-baselines", false, "also run raw "+
		"hashicorp/raft with a writer that waits in ApplyFuture.Error directly, and "+
		"with a state machine that decodes each entry as bundlex does")
	if err := flags.Parse(args); err != nil {
		return s, err
	}
	return s, s.parseLists(*kindsFlag)
}

// parseLists parses the -writers and -writes lists and checks the other flags.
func (s *benchSettings) parseLists(kindsFlag string) error {
	for field := range strings.SplitSeq(s.writersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 || n > maxWriters {
			return fmt.Errorf("raftbench: invalid -writers value %q: use integers "+
				"from 1 to %d separated by commas, such as 1,64", s.writersFlag, maxWriters)
		}
		s.writers = append(s.writers, n)
	}
	for field := range strings.SplitSeq(kindsFlag, ",") {
		kind := workloadKind(strings.TrimSpace(field))
		if kind != bundleWrites && kind != relationshipWrites {
			return fmt.Errorf("raftbench: invalid -writes value %q: use bundle, "+
				"relationship or both separated by a comma", kindsFlag)
		}
		s.kinds = append(s.kinds, kind)
	}
	switch {
	case s.duration <= 0:
		return fmt.Errorf("raftbench: -duration is %s; set a positive duration", s.duration)
	case s.warmup < 0:
		return fmt.Errorf("raftbench: -warmup is %s; set 0 or a positive duration", s.warmup)
	case s.rounds < 1:
		return fmt.Errorf("raftbench: -rounds is %d; set at least 1", s.rounds)
	case s.trials < 0:
		return fmt.Errorf("raftbench: -trials is %d; set 0 or more", s.trials)
	}
	return nil
}

func runBench(args []string) error {
	s, err := parseSettings(args)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp(s.dir, "raftbench-")
	if err != nil {
		return fmt.Errorf("raftbench: create a directory under %s: %w; set -dir to a "+
			"writable directory", s.dir, err)
	}
	defer os.RemoveAll(root)
	wl, err := newWorkload(slices.Max(s.writers))
	if err != nil {
		return err
	}
	r := report{settings: s, docSize: wl.documentSize()}
	if r.sizes, err = checkEntries(filepath.Join(root, "entry-check"), wl); err != nil {
		return err
	}
	if r.configs, err = measureWrites(s, root, wl); err != nil {
		return err
	}
	if s.trials > 0 {
		if r.failovers, err = runFailoverTrials(root, s.trials, s.nodeLogLevel); err != nil {
			return err
		}
	}
	r.write(os.Stdout)
	return nil
}

// measureWrites runs every configuration and returns their results in order.
func measureWrites(s benchSettings, root string, wl *workload) ([]configResult, error) {
	if s.cpuProfile != "" {
		stop, err := startCPUProfile(s.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	counter, err := installBatchCounter()
	if err != nil {
		return nil, err
	}
	var configs []configResult
	for _, kind := range s.kinds {
		for _, writers := range s.writers {
			dir := filepath.Join(root, fmt.Sprintf("%s-%d", kind, writers))
			c, err := measureConfig(s, dir, wl, counter, kind, writers)
			if err != nil {
				return nil, err
			}
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("raftbench: remove %s: %w", dir, err)
			}
			configs = append(configs, c)
		}
	}
	return configs, nil
}

// measureConfig forms a new cluster for each system, so that every system starts
// with an empty log and no snapshot. The systems then take turns, bundlex first, so
// that drift of the machine affects them alike.
func measureConfig(s benchSettings, dir string, wl *workload, counter *batchCounter,
	kind workloadKind, writers int) (configResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	slog.Info("forming the clusters", "write", kind, "writers", writers, "dir", dir)
	var ours *bundlexCluster
	var err error
	withSystemLabel("bundlex", func() { ours, err = startBundlexCluster(ctx, dir, writers) })
	if err != nil {
		return configResult{}, err
	}
	defer ours.close()
	systems := []system{bundlexSystem{store: ours.leader()}}
	variants := []rawVariant{rawReference}
	if s.extraBaselines {
		variants = append(variants, rawDirectWait, rawDecoding)
	}
	for _, variant := range variants {
		var theirs *rawCluster
		withSystemLabel(variant.name, func() { theirs, err = startRawCluster(ctx, dir, variant) })
		if err != nil {
			return configResult{}, err
		}
		defer theirs.close()
		systems = append(systems, rawSystem{variant: variant, node: theirs.leader})
	}

	c := configResult{kind: kind, writers: writers, runs: make([][]runResult, len(systems))}
	for _, sys := range systems {
		c.systems = append(c.systems, sys.name())
	}
	for round := range s.rounds {
		for i, sys := range systems {
			run, err := measure(sys, wl, kind, writers, s.warmup, s.duration, counter)
			if err != nil {
				return configResult{}, err
			}
			slog.Info("run done", "write", kind, "writers", writers, "round", round+1,
				"system", sys.name(), "writes", len(run.latencies))
			c.runs[i] = append(c.runs[i], run)
		}
	}
	return c, nil
}

func runFailoverTrials(root string, trials int, logLevel string) ([]time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("raftbench: find this program to start the node "+
			"processes: %w", err)
	}
	slog.Info("forming the cluster of node processes")
	l := launcher{exe: exe, logLevel: logLevel}
	nodes, err := startChildCluster(l, root)
	if err != nil {
		return nil, err
	}
	defer stopAll(nodes)
	return measureFailover(l, nodes, trials)
}

// withSystemLabel runs f with the pprof label system=name. Goroutines inherit the
// labels of the goroutine that starts them, so the Raft goroutines of a cluster
// started in f carry the label too, and `go tool pprof -tagfocus system=bundlex`
// shows the CPU time of one system alone.
func withSystemLabel(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("system", name), func(context.Context) { f() })
}

func startCPUProfile(path string) (stop func(), err error) {
	file, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("raftbench: create the CPU profile %s: %w", path, err)
	}
	if err := pprof.StartCPUProfile(file); err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("raftbench: start the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = file.Close()
	}, nil
}
