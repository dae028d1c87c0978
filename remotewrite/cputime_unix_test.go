//go:build unix

package remotewrite

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time of the process. Benchmarks report
// CPU per sample alongside wall time because the shared benchmark machine
// is oversubscribed: wall time there measures the neighbours as much as us.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
