package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// runResult is one measured run of one system.
type runResult struct {
	latencies []time.Duration
	window    time.Duration
	// cpu is the process CPU time used during the window.
	cpu time.Duration
	// batches are the leader's log writes during the window.
	batches batchTotals
}

// measure runs writers concurrent writers against sys for warmup plus window. Only
// writes that start after the warmup and finish inside the window count. Each writer
// waits for its write to commit before it starts the next, so the latencies are
// commit latencies under a closed-loop load.
func measure(sys system, wl *workload, kind workloadKind, writers int,
	warmup, window time.Duration, counter *batchCounter) (runResult, error) {
	start := time.Now()
	counted := start.Add(warmup)
	deadline := counted.Add(window)
	perWriter := make([][]time.Duration, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	var usage windowUsage
	wg.Go(func() { usage = sampleWindow(counted, deadline, counter) })
	withSystemLabel(sys.name(), func() {
		for w := range writers {
			wg.Go(func() {
				perWriter[w], errs[w] = runWriter(sys, wl, kind, w, counted, deadline)
			})
		}
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return runResult{}, fmt.Errorf("raftbench: %s %s writes with %d writers: %w",
			sys.name(), kind, writers, err)
	}
	return runResult{latencies: slices.Concat(perWriter...), window: window,
		cpu: usage.cpu, batches: usage.batches}, nil
}

// windowUsage is the CPU time and the log writes of a measurement window.
type windowUsage struct {
	cpu     time.Duration
	batches batchTotals
}

// sampleWindow waits until from, then until to, and returns the CPU time and the
// leader's log writes in between.
func sampleWindow(from, to time.Time, counter *batchCounter) windowUsage {
	time.Sleep(time.Until(from))
	cpu, batches := processCPUTime(), counter.totals()
	time.Sleep(time.Until(to))
	end := counter.totals()
	return windowUsage{cpu: processCPUTime() - cpu, batches: batchTotals{
		entries: end.entries - batches.entries, batches: end.batches - batches.batches}}
}

func runWriter(sys system, wl *workload, kind workloadKind, w int,
	counted, deadline time.Time) ([]time.Duration, error) {
	var latencies []time.Duration
	for {
		commit, err := sys.prepare(wl, kind, w)
		if err != nil {
			return nil, err
		}
		begin := time.Now()
		if !begin.Before(deadline) {
			return latencies, nil
		}
		if err := commit(); err != nil {
			return nil, fmt.Errorf("writer %d: %w", w, err)
		}
		end := time.Now()
		if !begin.Before(counted) && !end.After(deadline) {
			latencies = append(latencies, end.Sub(begin))
		}
	}
}

// summary is the merged result of the runs of one system for one configuration.
type summary struct {
	p50, p99   time.Duration
	throughput float64 // committed writes per second
	writes     int
	// cpuPerWrite is the process CPU time per counted write, on all three nodes.
	cpuPerWrite time.Duration
	// busyCores is the process CPU time divided by the window: 2 means two cores
	// were busy all the time.
	busyCores float64
	// entriesPerBatch is the mean number of entries per disk write of the leader's
	// log, 0 when unknown.
	entriesPerBatch float64
}

func summarize(runs []runResult) summary {
	var all []time.Duration
	var window, cpu time.Duration
	var batches batchTotals
	for _, run := range runs {
		all = append(all, run.latencies...)
		window += run.window
		cpu += run.cpu
		batches.entries += run.batches.entries
		batches.batches += run.batches.batches
	}
	slices.Sort(all)
	sum := summary{
		p50:        percentile(all, 0.50),
		p99:        percentile(all, 0.99),
		throughput: float64(len(all)) / window.Seconds(),
		writes:     len(all),
		busyCores:  cpu.Seconds() / window.Seconds(),
	}
	if len(all) > 0 {
		sum.cpuPerWrite = cpu / time.Duration(len(all))
	}
	if batches.batches > 0 {
		sum.entriesPerBatch = batches.entries / float64(batches.batches)
	}
	return sum
}

// percentile returns the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}
