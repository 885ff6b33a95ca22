package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"

	"github.com/bundlex/bundlex/raft"
)

// failoverTrustDomain is the peer whose bundle the failover writes store.
const failoverTrustDomain = "failover.example.org"

// The node subcommand runs one bundlex store in its own process, so that the
// failover measurement can kill the leader with SIGKILL. It reads one request per
// line on stdin and writes one line per reply on stdout:
//
//	wait-leadership           -> "reply ok" once this node leads
//	state                     -> "reply <Raft state>"
//	add-voter <id> <address>  -> "reply ok"
//	create-relationship       -> "reply ok" once the failover relationship is stored
//	applied-index             -> "reply <index>"
//	wait-applied <index>      -> "reply ok" once this node applied index
//	write <sequence>          -> "write ok <sequence>" once this node, as leader, has
//	                             stored the failover bundle with that sequence
//	cancel                    -> "write cancelled <sequence>" for a pending write
//
// A failed request gets "reply error <message>" or "write error <message>". The
// node closes its store when stdin ends.
func runNode(args []string) error {
	flags := flag.NewFlagSet("raftbench node", flag.ContinueOnError)
	id := flags.String("id", "", "Raft server ID of this node")
	dir := flags.String("dir", "", "data directory of this node")
	bind := flags.String("bind", "127.0.0.1:0", "host:port of the Raft transport")
	bootstrap := flags.Bool("bootstrap", false, "form a new cluster with this node as "+
		"the only voter when the data directory has no Raft state")
	logLevel := flags.String("log-level", "off", "level of the Raft logs on stderr: "+
		"trace, debug, info, warn, error or off")
	if err := flags.Parse(args); err != nil {
		return err
	}

	store, err := raft.Open(raft.Config{
		NodeID:    *id,
		DataDir:   *dir,
		BindAddr:  *bind,
		Bootstrap: *bootstrap,
		Logger: hclog.New(&hclog.LoggerOptions{Name: *id, Output: os.Stderr,
			Level: hclog.LevelFromString(*logLevel)}),
	})
	if err != nil {
		return err
	}
	defer store.Close()
	wl, err := newWorkload(0)
	if err != nil {
		return err
	}
	n := &nodeServer{store: store, wl: wl, out: bufio.NewWriter(os.Stdout)}
	n.send("ready %s", store.Addr())
	return n.serve(os.Stdin)
}

type nodeServer struct {
	store *raft.Store
	wl    *workload

	mu  sync.Mutex // serializes lines on out
	out *bufio.Writer

	// cancelWrite and writeDone belong to the latest write request. Only the
	// serve loop reads and replaces them.
	cancelWrite context.CancelFunc
	writeDone   chan struct{}
}

func (n *nodeServer) send(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.out, format+"\n", args...)
	_ = n.out.Flush()
}

func (n *nodeServer) reply(err error) {
	if err != nil {
		n.send("reply error %s", oneLine(err))
		return
	}
	n.send("reply ok")
}

func (n *nodeServer) serve(in io.Reader) error {
	lines := bufio.NewScanner(in)
	ctx := context.Background()
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 {
			continue
		}
		n.handle(ctx, fields[0], fields[1:])
	}
	if n.cancelWrite != nil {
		n.cancelWrite()
		<-n.writeDone
	}
	return lines.Err()
}

func (n *nodeServer) handle(ctx context.Context, request string, args []string) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	switch {
	case request == "wait-leadership":
		n.reply(waitForStoreLeadership(ctx, n.store))
	case request == "state":
		n.send("reply %s", n.store.State())
	case request == "add-voter" && len(args) == 2:
		future := n.store.Raft().AddVoter(hraft.ServerID(args[0]),
			hraft.ServerAddress(args[1]), 0, setupTimeout)
		n.reply(future.Error())
	case request == "create-relationship":
		cmd := raft.CreateRelationship{Relationship: relationship(failoverTrustDomain)}
		n.reply(n.store.Apply(ctx, cmd))
	case request == "applied-index":
		n.send("reply %d", n.store.AppliedIndex())
	case request == "wait-applied" && len(args) == 1:
		index, err := strconv.ParseUint(args[0], 10, 64)
		if err == nil {
			err = n.store.WaitForApplied(ctx, index)
		}
		n.reply(err)
	case request == "write" && len(args) == 1:
		n.startWrite(args[0])
	case request == "cancel":
		if n.cancelWrite != nil {
			n.cancelWrite()
		}
	default:
		n.reply(fmt.Errorf("raftbench: unknown request %q with %d arguments",
			request, len(args)))
	}
}

// startWrite waits, in the background, until this node leads and then stores the
// failover bundle. It retries when leadership moves away before the write commits.
func (n *nodeServer) startWrite(arg string) {
	sequence, err := strconv.ParseUint(arg, 10, 64)
	if err != nil {
		n.send("write error %s", oneLine(err))
		return
	}
	if n.writeDone != nil {
		select {
		case <-n.writeDone:
		default:
			n.send("write error a write is pending; cancel it first")
			return
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.cancelWrite, n.writeDone = cancel, done
	go func() {
		defer close(done)
		defer cancel()
		cmd := bundleCommand(failoverTrustDomain, n.wl.document(sequence), sequence,
			baseTime)
		for {
			if err := waitForStoreLeadership(ctx, n.store); err != nil {
				if ctx.Err() != nil {
					n.send("write cancelled %d", sequence)
				} else {
					n.send("write error %s", oneLine(err))
				}
				return
			}
			err := n.store.Apply(ctx, cmd)
			switch {
			case err == nil:
				n.send("write ok %d", sequence)
				return
			case ctx.Err() != nil:
				n.send("write cancelled %d", sequence)
				return
			case !errors.Is(err, raft.ErrNotLeader):
				n.send("write error %s", oneLine(err))
				return
			}
		}
	}()
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
