package detector

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// lowerThreadPriority raises the nice value of the calling OS thread (the
// caller has locked its goroutine to it). Raising one's own nice value needs
// no privilege.
func lowerThreadPriority(nice int) error {
	if nice <= 0 {
		return nil
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		return fmt.Errorf("cannot set the inference thread's nice value to %d: %w", nice, err)
	}
	return nil
}
