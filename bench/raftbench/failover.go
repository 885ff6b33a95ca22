package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// failoverTimeout bounds one failover trial, from the kill to the first write.
const failoverTimeout = 60 * time.Second

// childNode is a `raftbench node` process and the pipes of its line protocol.
type childNode struct {
	id, dir, addr string
	cmd           *exec.Cmd
	stdin         io.WriteCloser
	replies       chan string
	writes        chan string
	// exited is closed when the process's stdout ends, which happens when it exits.
	exited chan struct{}
}

// launcher starts node processes of this program.
type launcher struct {
	exe string
	// logLevel is the level of the nodes' Raft logs, which go to this process's
	// stderr.
	logLevel string
}

func (l launcher) start(id, dir, bind string, bootstrap bool) (*childNode, error) {
	exe := l.exe
	args := []string{"node", "-id", id, "-dir", dir, "-bind", bind, "-log-level", l.logLevel}
	if bootstrap {
		args = append(args, "-bootstrap")
	}
	c := &childNode{id: id, dir: dir, cmd: exec.Command(exe, args...),
		replies: make(chan string, 16), writes: make(chan string, 16),
		exited: make(chan struct{})}
	c.cmd.Stderr = os.Stderr

	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("raftbench: connect to node %s: %w", id, err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("raftbench: connect to node %s: %w", id, err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("raftbench: start node %s as %s: %w", id, exe, err)
	}

	ready := make(chan string, 1)
	go c.readLines(stdout, ready)
	select {
	case line := <-ready:
		c.addr = strings.TrimPrefix(line, "ready ")
		return c, nil
	case <-c.exited:
		_ = c.cmd.Wait()
		return nil, fmt.Errorf("raftbench: node %s exited before it was ready; its "+
			"error is on stderr above", id)
	case <-time.After(setupTimeout):
		c.kill()
		return nil, fmt.Errorf("raftbench: node %s was not ready within %s", id, setupTimeout)
	}
}

// readLines routes the process's lines: the first to ready, then replies and write
// outcomes to their channels.
func (c *childNode) readLines(stdout io.Reader, ready chan<- string) {
	defer close(c.exited)
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "ready "):
			ready <- line
		case strings.HasPrefix(line, "reply "):
			c.replies <- strings.TrimPrefix(line, "reply ")
		case strings.HasPrefix(line, "write "):
			c.writes <- strings.TrimPrefix(line, "write ")
		default:
			slog.Warn("unexpected output of a node process", "node", c.id, "line", line)
		}
	}
}

// request sends one request and returns its reply.
func (c *childNode) request(format string, args ...any) (string, error) {
	line := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		return "", fmt.Errorf("raftbench: send %q to node %s: %w", line, c.id, err)
	}
	select {
	case reply := <-c.replies:
		if msg, failed := strings.CutPrefix(reply, "error "); failed {
			return "", fmt.Errorf("raftbench: node %s failed %q: %s", c.id, line, msg)
		}
		return reply, nil
	case <-c.exited:
		return "", fmt.Errorf("raftbench: node %s exited during %q", c.id, line)
	case <-time.After(setupTimeout + 5*time.Second):
		return "", fmt.Errorf("raftbench: node %s did not reply to %q", c.id, line)
	}
}

// kill sends SIGKILL, so that the node stops without closing its store or its
// connections, and reaps the process.
func (c *childNode) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// stop closes stdin, which makes the node close its store and exit, and kills it
// if it has not exited within setupTimeout.
func (c *childNode) stop() {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(setupTimeout):
		_ = c.cmd.Process.Kill()
	}
	_ = c.cmd.Wait()
}

// startChildCluster starts three node processes and forms one cluster with a
// relationship for the failover bundle. It returns the leader first.
func startChildCluster(l launcher, root string) ([]*childNode, error) {
	var nodes []*childNode
	fail := func(err error) ([]*childNode, error) {
		stopAll(nodes)
		return nil, err
	}
	for i := range clusterSize {
		id := fmt.Sprintf("n%d", i+1)
		node, err := l.start(id, filepath.Join(root, "failover-"+id), "127.0.0.1:0", i == 0)
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, node)
		if i == 0 {
			if _, err := node.request("wait-leadership"); err != nil {
				return fail(err)
			}
			continue
		}
		if _, err := nodes[0].request("add-voter %s %s", id, node.addr); err != nil {
			return fail(err)
		}
	}
	if _, err := nodes[0].request("create-relationship"); err != nil {
		return fail(err)
	}
	if err := waitForCatchUp(nodes[0], nodes[1:]); err != nil {
		return fail(err)
	}
	return nodes, nil
}

func waitForCatchUp(leader *childNode, followers []*childNode) error {
	index, err := leader.request("applied-index")
	if err != nil {
		return err
	}
	for _, follower := range followers {
		if _, err := follower.request("wait-applied %s", index); err != nil {
			return err
		}
	}
	return nil
}

func stopAll(nodes []*childNode) {
	for _, node := range nodes {
		node.stop()
	}
}

// measureFailover runs trials of: SIGKILL the leader, time until a survivor that
// became leader has stored a bundle, restart the killed node and wait until it has
// caught up. nodes[0] must be the leader.
func measureFailover(l launcher, nodes []*childNode, trials int) ([]time.Duration, error) {
	var times []time.Duration
	sequence := uint64(firstSequence)
	for trial := range trials {
		if state, err := nodes[0].request("state"); err != nil || state != "Leader" {
			return nil, fmt.Errorf("raftbench: node %s is %q, not the leader, before "+
				"failover trial %d: %v", nodes[0].id, state, trial+1, err)
		}
		sequence++
		killed, survivors := nodes[0], nodes[1:]
		start := time.Now()
		killed.kill()
		elapsed, winner, err := awaitFirstWrite(survivors, sequence, start)
		if err != nil {
			return nil, fmt.Errorf("raftbench: failover trial %d: %w", trial+1, err)
		}
		times = append(times, elapsed)
		slog.Info("failover trial done", "trial", trial+1, "elapsed", elapsed,
			"new_leader", survivors[winner].id)

		restarted, err := l.start(killed.id, killed.dir, killed.addr, false)
		if err != nil {
			return nil, err
		}
		leader := survivors[winner]
		others := []*childNode{restarted, survivors[1-winner]}
		if err := waitForCatchUp(leader, others); err != nil {
			return nil, err
		}
		copy(nodes, append([]*childNode{leader}, others...))
	}
	return times, nil
}

// awaitFirstWrite sends both survivors a request to write once they lead. It
// returns the time since start of the first success and which survivor it was. It cancels the other
// write and waits for its outcome, so no reply is left for the next trial.
func awaitFirstWrite(survivors []*childNode, sequence uint64, start time.Time) (
	time.Duration, int, error) {
	for _, node := range survivors {
		if _, err := fmt.Fprintf(node.stdin, "write %d\n", sequence); err != nil {
			return 0, 0, fmt.Errorf("send the write to node %s: %w", node.id, err)
		}
	}
	want := fmt.Sprintf("ok %d", sequence)
	timeout := time.After(failoverTimeout)
	var outcome string
	winner := -1
	select {
	case outcome = <-survivors[0].writes:
		winner = 0
	case outcome = <-survivors[1].writes:
		winner = 1
	case <-timeout:
		return 0, 0, fmt.Errorf("no survivor stored a bundle within %s", failoverTimeout)
	}
	elapsed := time.Since(start)
	if outcome != want {
		return 0, 0, fmt.Errorf("node %s: write %s", survivors[winner].id, outcome)
	}
	other := survivors[1-winner]
	if _, err := fmt.Fprintln(other.stdin, "cancel"); err != nil {
		return 0, 0, fmt.Errorf("cancel the write on node %s: %w", other.id, err)
	}
	select {
	case outcome = <-other.writes:
	case <-timeout:
		return 0, 0, fmt.Errorf("node %s did not end its write", other.id)
	}
	if strings.HasPrefix(outcome, "error ") {
		return 0, 0, fmt.Errorf("node %s: write %s", other.id, outcome)
	}
	return elapsed, winner, nil
}
