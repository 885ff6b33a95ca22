package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets of the comparison with raw hashicorp/raft.
const (
	maxLatencyRatio    = 1.20 // bundlex p50 / raw p50
	minThroughputRatio = 0.80 // bundlex writes/s / raw writes/s
)

// configResult contains the runs of every system for one kind of write and one
// number of writers. runs[i] contains the runs of systems[i] in round order. The first system
// is bundlex and the second raw hashicorp/raft.
type configResult struct {
	kind    workloadKind
	writers int
	systems []string
	runs    [][]runResult
}

type report struct {
	settings  benchSettings
	docSize   int
	sizes     entrySizes
	configs   []configResult
	failovers []time.Duration
}

func (r report) write(out io.Writer) {
	s := r.settings
	fmt.Fprintf(out, "Machine: %s\n\n", machineDescription(s.dir))
	fmt.Fprintf(out, "Settings: %s measured per run after %s of warm-up, %d rounds "+
		"(the systems in turn), writers %s, %d failover trials. "+
		"Bundle document %d bytes; log entries %d bytes (bundle write) and %d bytes "+
		"(relationship write).\n\n", s.duration, s.warmup, s.rounds, s.writersFlag,
		s.trials, r.docSize, r.sizes[bundleWrites], r.sizes[relationshipWrites])
	r.writeSummary(out)
	r.writeRatios(out)
	r.writeRuns(out)
	r.writeFailover(out)
}

// writeSummary writes one row per configuration and system, over all its rounds.
func (r report) writeSummary(out io.Writer) {
	fmt.Fprintln(out, "| write | writers | system | p50 | p99 | writes/s | writes "+
		"| entries per batch | CPU per write | busy cores |")
	fmt.Fprintln(out, "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range r.configs {
		for i, name := range c.systems {
			sum := summarize(c.runs[i])
			fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %.0f | %d | %.1f | %.0f µs "+
				"| %.2f |\n", c.kind, c.writers, name, millis(sum.p50), millis(sum.p99),
				sum.throughput, sum.writes, sum.entriesPerBatch, micros(sum.cpuPerWrite),
				sum.busyCores)
		}
	}
	fmt.Fprintln(out, "\nCPU per write is the process CPU time, of all three nodes, per "+
		"counted write. Busy cores is that CPU time divided by the measured time. "+
		"Entries per batch is the mean number of entries per disk write of the leader's "+
		"log (hashicorp/raft's raft.leader.dispatchNumLogs).")
}

// writeRatios compares bundlex with the reference raw baseline.
func (r report) writeRatios(out io.Writer) {
	fmt.Fprintf(out, "\n| write | writers | p50 bundlex / raw (target at most %.2f) "+
		"| writes/s bundlex / raw (target at least %.2f) |\n", maxLatencyRatio,
		minThroughputRatio)
	fmt.Fprintln(out, "| --- | ---: | ---: | ---: |")
	for _, c := range r.configs {
		ours, theirs := summarize(c.runs[0]), summarize(c.runs[1])
		latency := float64(ours.p50) / float64(theirs.p50)
		throughput := ours.throughput / theirs.throughput
		fmt.Fprintf(out, "| %s | %d | %.2f %s | %.2f %s |\n", c.kind, c.writers,
			latency, verdict(latency <= maxLatencyRatio), throughput,
			verdict(throughput >= minThroughputRatio))
	}
}

// writeRuns writes every run on its own, so that the spread between rounds shows.
func (r report) writeRuns(out io.Writer) {
	fmt.Fprintln(out, "\nEach run on its own, in the order they ran:")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| write | writers | round | system | p50 | writes/s | entries per "+
		"batch |")
	fmt.Fprintln(out, "| --- | ---: | ---: | --- | ---: | ---: | ---: |")
	for _, c := range r.configs {
		for round := range c.runs[0] {
			for i, name := range c.systems {
				sum := summarize(c.runs[i][round : round+1])
				fmt.Fprintf(out, "| %s | %d | %d | %s | %s | %.0f | %.1f |\n", c.kind,
					c.writers, round+1, name, millis(sum.p50), sum.throughput,
					sum.entriesPerBatch)
			}
		}
	}
}

func (r report) writeFailover(out io.Writer) {
	if len(r.failovers) == 0 {
		return
	}
	sorted := slices.Sorted(slices.Values(r.failovers))
	trialTimes := make([]string, len(r.failovers))
	for i, d := range r.failovers {
		trialTimes[i] = millis(d)
	}
	fmt.Fprintln(out, "\nFailover: SIGKILL of the leader process until the first "+
		"bundle write has committed on the new leader.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| trials | p50 | max | each trial |")
	fmt.Fprintln(out, "| ---: | ---: | ---: | --- |")
	fmt.Fprintf(out, "| %d | %s | %s | %s |\n", len(sorted), millis(percentile(sorted, 0.5)),
		millis(sorted[len(sorted)-1]), strings.Join(trialTimes, ", "))
}

func verdict(met bool) string {
	if met {
		return "(met)"
	}
	return "(missed)"
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// machineDescription returns the CPUs, the Go version and the file system of dir.
func machineDescription(dir string) string {
	return fmt.Sprintf("%d CPUs (GOMAXPROCS %d), %s, %s/%s, %s, temp dir %s on %s",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), dir, fileSystem(dir))
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown CPU" where
// that file does not exist.
func cpuModel() string {
	file, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer file.Close()
	lines := bufio.NewScanner(file)
	for lines.Scan() {
		name, value, found := strings.Cut(lines.Text(), ":")
		if found && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

// fileSystem returns the type and device of the mount that contains dir, from the
// longest matching mount point in /proc/self/mounts.
func fileSystem(dir string) string {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		resolved = dir
	}
	file, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "an unknown file system"
	}
	defer file.Close()
	longest, description := -1, "an unknown file system"
	lines := bufio.NewScanner(file)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) < 3 {
			continue
		}
		device, mountPoint, fsType := fields[0], fields[1], fields[2]
		within := resolved == mountPoint ||
			strings.HasPrefix(resolved, strings.TrimSuffix(mountPoint, "/")+"/")
		if within && len(mountPoint) > longest {
			longest, description = len(mountPoint), fmt.Sprintf("%s (%s)", fsType, device)
		}
	}
	return description
}
