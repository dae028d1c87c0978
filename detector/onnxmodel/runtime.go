package onnxmodel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv names the environment variable that points at the ONNX Runtime
// shared library when InitRuntime is called without an explicit path.
const LibraryEnv = "SENTINEL_ORT_LIB"

// libraryRelPath is where scripts/install-onnxruntime.sh installs the library,
// relative to the repository root.
var libraryRelPath = filepath.Join(".cache", "onnxruntime", "libonnxruntime.so")

var (
	runtimeMu   sync.Mutex
	runtimePath string // library loaded by InitRuntime; "" until it succeeds
)

// InitRuntime loads the ONNX Runtime shared library and creates the process-wide
// ORT environment. It is idempotent and safe for concurrent use: once it has
// succeeded, later calls return nil without doing anything, unless they name a
// different library explicitly, which is an error (a process can load only one).
//
// The library is found by, in order:
//  1. libPath, when not empty;
//  2. the environment variable SENTINEL_ORT_LIB;
//  3. .cache/onnxruntime/libonnxruntime.so in the directory of the running
//     executable, in the current directory, or in the nearest parent of the
//     current directory that contains go.mod (so that `go test` finds the copy
//     installed by scripts/install-onnxruntime.sh from any package).
func InitRuntime(libPath string) error {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if runtimePath != "" {
		if libPath != "" && filepath.Clean(libPath) != runtimePath {
			return fmt.Errorf("cannot load ONNX Runtime from %s: already initialised with %s", libPath, runtimePath)
		}
		return nil
	}
	if ort.IsInitialized() {
		// Initialised by other code in this process; use it as it is.
		runtimePath = "(initialised elsewhere)"
		return nil
	}
	lib, err := findLibrary(libPath)
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("cannot initialise ONNX Runtime from %s: %w", lib, err)
	}
	runtimePath = lib
	return nil
}

// RuntimeLibrary returns the path of the library InitRuntime loaded, or "".
func RuntimeLibrary() string {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	return runtimePath
}

func findLibrary(explicit string) (string, error) {
	if explicit != "" {
		if err := checkFile(explicit); err != nil {
			return "", fmt.Errorf("cannot use ONNX Runtime library: %w", err)
		}
		return filepath.Clean(explicit), nil
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		if err := checkFile(env); err != nil {
			return "", fmt.Errorf("cannot use ONNX Runtime library from $%s: %w", LibraryEnv, err)
		}
		return filepath.Clean(env), nil
	}
	var tried []string
	try := func(dir string) string {
		p := filepath.Join(dir, libraryRelPath)
		tried = append(tried, p)
		if checkFile(p) == nil {
			return p
		}
		return ""
	}
	if exe, err := os.Executable(); err == nil {
		if p := try(filepath.Dir(exe)); p != "" {
			return p, nil
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if p := try(wd); p != "" {
			return p, nil
		}
		for dir := wd; ; {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if p := try(dir); p != "" {
					return p, nil
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the ONNX Runtime library: set $%s or run scripts/install-onnxruntime.sh (tried %s)", LibraryEnv, strings.Join(tried, ", "))
}

func checkFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New(p + " is a directory")
	}
	return nil
}
