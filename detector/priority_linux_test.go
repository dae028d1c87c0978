package detector

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLowerThreadPriorityOnlyAffectsTheCallingThread(t *testing.T) {
	niceOfThisThread := func() string {
		b, err := os.ReadFile("/proc/thread-self/stat")
		require.NoError(t, err)
		// Field 19 (nice), counted after the parenthesised command name.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		return f[16]
	}
	before := niceOfThisThread()
	done := make(chan string)
	go func() {
		// Never unlocked: the thread exits with the goroutine, as in Run.
		runtime.LockOSThread()
		require.NoError(t, lowerThreadPriority(7))
		done <- niceOfThisThread()
	}()
	require.Equal(t, "7", <-done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	require.Equal(t, before, niceOfThisThread())
}
