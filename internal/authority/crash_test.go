package authority

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// crashDirEnv makes TestCrashChild run as the child process of
// TestBuiltinSurvivesKill, rotating keys in that directory until it is killed.
const crashDirEnv = "BUNDLEX_AUTHORITY_CRASH_DIR"

func crashConfig(dir string) BuiltinConfig {
	return BuiltinConfig{Dir: dir, TrustDomain: testTD}
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestBuiltinSurvivesKill")
	}
	b, err := OpenBuiltin(crashConfig(dir))
	require.NoError(t, err)
	for i := 0; ; i++ {
		require.NoError(t, b.Rotate())
		// Each line lists the active key ID after a completed Rotate.
		fmt.Printf("rotated %d %s\n", i, activeKID(t, b))
	}
}

// TestBuiltinSurvivesKill kills a process with SIGKILL while it writes keys
// and state in a loop, and checks that the directory opens with the same
// schedule and without leftover files.
func TestBuiltinSurvivesKill(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("already the child process")
	}
	dir := t.TempDir() + "/authority"
	for round := range 6 {
		t.Run(fmt.Sprintf("kill round %d", round), func(t *testing.T) {
			lastKID := runAndKill(t, dir, 3+round*7)

			b, err := OpenBuiltin(crashConfig(dir))
			require.NoError(t, err, "reopen after kill -9")
			keys := b.PublicKeys()
			require.Len(t, keys.X509Authorities, 2, "active and prepared CA")
			require.Len(t, keys.JWTAuthorities, 2, "active and prepared JWT key")
			require.Equal(t, lastKID, activeKID(t, b), "same active key after restart")

			files, err := readDirNames(dir)
			require.NoError(t, err)
			require.Len(t, files, 5, "state and four key files, no leftovers: %v", files)
			for _, name := range files {
				require.False(t, strings.HasPrefix(name, tempPrefix), "leftover %s", name)
			}
			_, err = b.MintX509SVID(spiffeIDOf(t, "/after-kill"), 0)
			require.NoError(t, err)
		})
	}
}

// runAndKill starts the child, lets it finish rotations Rotate calls, kills it
// in the middle of the next ones and returns the active key ID it reported.
func runAndKill(t *testing.T, dir string, rotations int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Wait() }()

	lines := make(chan string)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	var kid string
	deadline := time.After(60 * time.Second)
	for seen := 0; seen < rotations; {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "child exited early")
			if fields := strings.Fields(line); len(fields) == 3 && fields[0] == "rotated" {
				kid = fields[2]
				seen++
			}
		case <-deadline:
			t.Fatal("child did not report enough rotations within 60s")
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	for range lines {
		// Drain so the reader goroutine ends.
	}
	return kid
}
