package main

import (
	"fmt"
	"sync"

	metrics "github.com/hashicorp/go-metrics/compat"
)

// batchMetric is the gauge that hashicorp/raft v1.7.2 sets to the number of entries
// the leader writes to its log in one disk write (dispatchLogs in raft.go).
const batchMetric = "raft.leader.dispatchNumLogs"

// batchCounter totals the values of batchMetric. hashicorp/raft reports metrics to
// one process-wide sink, so the totals cover every leader in this process. Only one
// cluster takes writes at a time, and the idle ones write no entries, so the totals
// over a run belong to the cluster under test.
type batchCounter struct {
	mu      sync.Mutex
	entries float64
	batches int
}

// batchTotals is a reading of batchCounter.
type batchTotals struct {
	entries float64
	batches int
}

// installBatchCounter makes hashicorp/raft report its metrics to a new
// batchCounter, with every metric but batchMetric filtered out.
func installBatchCounter() (*batchCounter, error) {
	counter := &batchCounter{}
	conf := metrics.DefaultConfig("")
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false
	conf.FilterDefault = false
	conf.AllowedPrefixes = []string{batchMetric}
	if _, err := metrics.NewGlobal(conf, counter); err != nil {
		return nil, fmt.Errorf("raftbench: install the metrics sink: %w", err)
	}
	return counter, nil
}

func (c *batchCounter) totals() batchTotals {
	if c == nil {
		return batchTotals{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return batchTotals{entries: c.entries, batches: c.batches}
}

func (c *batchCounter) record(val float32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries += float64(val)
	c.batches++
}

// SetGauge and the other methods implement the go-metrics MetricSink. The filter
// of installBatchCounter passes only batchMetric.
func (c *batchCounter) SetGauge(_ []string, val float32) { c.record(val) }

func (c *batchCounter) SetGaugeWithLabels(_ []string, val float32, _ []metrics.Label) {
	c.record(val)
}

func (c *batchCounter) EmitKey([]string, float32)                                {}
func (c *batchCounter) IncrCounter([]string, float32)                            {}
func (c *batchCounter) IncrCounterWithLabels([]string, float32, []metrics.Label) {}
func (c *batchCounter) AddSample([]string, float32)                              {}
func (c *batchCounter) AddSampleWithLabels([]string, float32, []metrics.Label)   {}
