package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// targetRatio is the verify API's target throughput as a share of go-spiffe in
// process.
const targetRatio = 0.60

type report struct {
	settings    settings
	loadBefore  string
	loadAfter   string
	mintTime    time.Duration
	idleNodeCPU time.Duration
	// rounds[i] maps each variant name to its measurement in round i.
	rounds []map[string]measurement
	push   []pushResult
}

func (r *report) write(out io.Writer) {
	s := r.settings
	fmt.Fprintf(out, "Machine: %d CPUs (GOMAXPROCS %d), %s, %s/%s, %s. Load average "+
		"before %s, after %s.\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), r.loadBefore, r.loadAfter)
	fmt.Fprintf(out, "Settings: rounds %d, each variant %s per round after %s of warm-up, "+
		"concurrency %d, %d distinct tokens, %d agents with %.3g of requests on new "+
		"tokens. Minting %d tokens took %s. The idle node used %s of CPU per second.\n\n",
		s.rounds, s.duration, s.warmup, s.concurrency, s.distinct, s.agents, s.mixNew,
		1+s.agents+s.distinct, r.mintTime.Round(time.Millisecond),
		r.idleNodeCPU.Round(time.Millisecond))
	r.writeSummary(out)
	r.writeRounds(out)
	r.writePush(out)
}

// ratioSet is one API variant's ratios to go-spiffe in process of the same
// round, one per round.
type ratioSet struct {
	// throughput divides the verifications per second.
	throughput []float64
	// colocatedCPU divides go-spiffe's CPU time per verification by the node's
	// and the clients' together. It is the throughput ratio of two CPU-bound
	// runs that both have the whole machine, and load from other processes
	// moves it less than it moves throughput.
	colocatedCPU []float64
	// serverCPU divides go-spiffe's CPU time per verification by the node's
	// alone: the throughput ratio of a node whose clients run elsewhere.
	serverCPU []float64
}

func (r *report) ratios(name string) ratioSet {
	var set ratioSet
	for _, round := range r.rounds {
		base, m := round[variantInProcess], round[name]
		inProcess := base.perVerification(base.selfCPU)
		set.throughput = append(set.throughput, m.rate()/base.rate())
		set.colocatedCPU = append(set.colocatedCPU,
			inProcess/m.perVerification(m.serverCPU+m.selfCPU))
		set.serverCPU = append(set.serverCPU, inProcess/m.perVerification(m.serverCPU))
	}
	return set
}

// verdict reports whether the median of ratios reaches targetRatio.
func verdict(ratios []float64) string {
	if median(ratios) < targetRatio {
		return fmt.Sprintf("%.2f, missed", median(ratios))
	}
	return fmt.Sprintf("%.2f, met", median(ratios))
}

// writeSummary writes the medians over the rounds and whether the target is met.
func (r *report) writeSummary(out io.Writer) {
	fmt.Fprintln(out, "| variant | verifications/s (median) | throughput ratio per round "+
		"| co-located CPU ratio per round | server-CPU ratio per round |")
	fmt.Fprintln(out, "| --- | ---: | --- | --- | --- |")
	for _, name := range variantNames {
		var rates []float64
		for _, round := range r.rounds {
			rates = append(rates, round[name].rate())
		}
		if name == variantInProcess {
			fmt.Fprintf(out, "| %s | %.0f | 1 | 1 | 1 |\n", name, median(rates))
			continue
		}
		set := r.ratios(name)
		fmt.Fprintf(out, "| %s | %.0f | %s | %s | %s |\n", name, median(rates),
			formatRatios(set.throughput), formatRatios(set.colocatedCPU),
			formatRatios(set.serverCPU))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Medians against the target of %.2f:\n\n", targetRatio)
	fmt.Fprintln(out, "| variant | throughput | co-located CPU | server CPU |")
	fmt.Fprintln(out, "| --- | --- | --- | --- |")
	for _, name := range variantNames[1:] {
		set := r.ratios(name)
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", name, verdict(set.throughput),
			verdict(set.colocatedCPU), verdict(set.serverCPU))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Each ratio compares the API with go-spiffe in process in the same "+
		"round. Throughput divides verifications per second. Co-located CPU divides "+
		"go-spiffe's CPU time per verification by the node's and the clients' "+
		"together, the throughput ratio of CPU-bound runs that have the machine to "+
		"themselves. Server CPU divides it by the node's alone: the share of "+
		"in-process throughput that a node reaches when its clients run on other "+
		"machines.")
	fmt.Fprintln(out)
}

// writeRounds writes every measurement.
func (r *report) writeRounds(out io.Writer) {
	fmt.Fprintln(out, "| round | variant | verifications/s | ratio | node CPU µs/verification "+
		"| bench CPU µs/verification | server-CPU ratio | cores used by others |")
	fmt.Fprintln(out, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i, round := range r.rounds {
		base := round[variantInProcess]
		for _, name := range variantNames {
			m := round[name]
			serverRatio := "–"
			if name != variantInProcess {
				serverRatio = fmt.Sprintf("%.2f",
					base.perVerification(base.selfCPU)/m.perVerification(m.serverCPU))
			}
			fmt.Fprintf(out, "| %d | %s | %.0f | %.2f | %.1f | %.1f | %s | %.2f |\n", i+1,
				name, m.rate(), m.rate()/base.rate(), m.perVerification(m.serverCPU),
				m.perVerification(m.selfCPU), serverRatio, m.otherCores())
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Node CPU is the node process's utime+stime from /proc (one clock "+
		"tick resolution, usually 10 ms); for go-spiffe in process it is the idle node's. Bench CPU is this "+
		"process's: the verifications in process, the HTTPS clients for the API. Cores "+
		"used by others is the machine's CPU time from /proc/stat less both processes', "+
		"per second: other processes that competed for the CPUs.")
	fmt.Fprintln(out)
}

func (r *report) writePush(out io.Writer) {
	if len(r.push) == 0 {
		return
	}
	fmt.Fprintln(out, "Workload API push latency, from the start of the admin request "+
		"that stores a new bundle to the moment every watcher has it:")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| watchers | changes | p50 | p99 | max |")
	fmt.Fprintln(out, "| ---: | ---: | ---: | ---: | ---: |")
	for _, p := range r.push {
		fmt.Fprintf(out, "| %d | %d | %s | %s | %s |\n", p.watchers, len(p.latencies),
			formatLatency(percentile(p.latencies, 0.50)),
			formatLatency(percentile(p.latencies, 0.99)),
			formatLatency(slices.Max(p.latencies)))
	}
	fmt.Fprintln(out)
}

func formatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

func formatRatios(ratios []float64) string {
	parts := make([]string, len(ratios))
	for i, ratio := range ratios {
		parts[i] = fmt.Sprintf("%.2f", ratio)
	}
	return strings.Join(parts, " ")
}

// median returns the middle value, the upper one of an even count.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(values))
	return sorted[len(sorted)/2]
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
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
