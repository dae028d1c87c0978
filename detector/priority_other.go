//go:build !linux

package detector

// lowerThreadPriority is only implemented on Linux; elsewhere inference runs
// at the process's priority.
func lowerThreadPriority(int) error { return nil }
