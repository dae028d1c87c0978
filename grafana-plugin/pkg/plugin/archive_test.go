package plugin_test

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/grafana-plugin/pkg/plugin"
)

// pluginJSON is the part of plugin.json that Grafana's plugin validator
// (grafana/plugin-validator, plugincheck2) checks.
type pluginJSON struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Backend    bool   `json:"backend"`
	Alerting   bool   `json:"alerting"`
	Executable string `json:"executable"`
	Info       struct {
		Version string `json:"version"`
		Updated string `json:"updated"`
		Author  struct {
			Name string `json:"name"`
		} `json:"author"`
		Logos struct {
			Small string `json:"small"`
			Large string `json:"large"`
		} `json:"logos"`
	} `json:"info"`
	Includes []struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"includes"`
	Dependencies struct {
		GrafanaDependency string `json:"grafanaDependency"`
	} `json:"dependencies"`
}

// The binary suffixes the validator looks for next to `executable`.
var binarySuffixes = []string{"_linux_amd64", "_linux_arm64", "_darwin_amd64", "_darwin_arm64", "_windows_amd64.exe"}

// TestPluginArchive checks the archive `make plugin-zip` builds, the way
// Grafana's installer unpacks it and the plugin validator's rules read it:
// one top directory named after the app id (no dist/), plugin ids of the
// org-name-type form ending in their type, every nested plugin.json
// declared in the app's includes with its path and type, backend binaries
// named after `executable` with the platform suffixes, mode 0755 and of the
// platform their name says, a valid Apache-2.0 LICENSE, a CHANGELOG with
// this version, logos, modules and dashboards where plugin.json points.
func TestPluginArchive(t *testing.T) {
	var src pluginJSON
	readJSON(t, filepath.Join(pluginRoot(), "src", "plugin.json"), &src)
	var pkg struct {
		Version string `json:"version"`
	}
	readJSON(t, filepath.Join(pluginRoot(), "package.json"), &pkg)
	zipPath := filepath.Join(pluginRoot(), "build", src.ID+"-"+pkg.Version+".zip")
	zr, err := zip.OpenReader(zipPath)
	if os.IsNotExist(err) {
		skipOrFail(t, "plugin archive %s not built (make plugin-zip)", zipPath)
	}
	require.NoError(t, err)
	defer zr.Close()

	files := map[string]*zip.File{}
	tops := map[string]bool{}
	for _, f := range zr.File {
		require.False(t, strings.HasPrefix(f.Name, "/") || strings.Contains(f.Name, ".."), "unsafe path %q", f.Name)
		tops[strings.SplitN(f.Name, "/", 2)[0]] = true
		if !f.FileInfo().IsDir() {
			files[f.Name] = f
		}
	}
	require.Equal(t, map[string]bool{src.ID: true}, tops, "one top directory named after the plugin id")
	root := src.ID + "/"
	for name := range files {
		require.False(t, strings.HasPrefix(name, root+"dist/"), "dist/ must be renamed to the plugin id: %s", name)
	}
	read := func(name string) []byte {
		t.Helper()
		f, ok := files[name]
		require.True(t, ok, "%s missing from the archive", name)
		rc, err := f.Open()
		require.NoError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return b
	}

	// Every plugin.json in the archive, keyed by its path under the root.
	metas := map[string]pluginJSON{}
	for name := range files {
		if path.Base(name) != "plugin.json" {
			continue
		}
		var m pluginJSON
		require.NoError(t, json.Unmarshal(read(name), &m), name)
		metas[strings.TrimPrefix(name, root)] = m
	}
	app, ok := metas["plugin.json"]
	require.True(t, ok, "plugin.json at the top of the archive")
	require.Len(t, metas, 2, "the app and its nested data source")

	idForm := regexp.MustCompile(`^[a-z0-9]+-[a-z0-9-]+-(app|datasource|panel)$`)
	org := strings.SplitN(app.ID, "-", 2)[0]
	for rel, m := range metas {
		t.Run(rel, func(t *testing.T) {
			require.Regexp(t, idForm, m.ID, "org-name-type id")
			require.True(t, strings.HasSuffix(m.ID, "-"+m.Type), "id %q ends with its type %q", m.ID, m.Type)
			require.Equal(t, org, strings.SplitN(m.ID, "-", 2)[0], "one org for the app and its nested plugins")
			require.NotEmpty(t, m.Name)
			require.Equal(t, pkg.Version, m.Info.Version, "version substituted from package.json")
			_, err := time.Parse(time.DateOnly, m.Info.Updated)
			require.NoError(t, err, "updated is a date, not a placeholder")
			require.NotEmpty(t, m.Info.Author.Name)
			require.NotEmpty(t, m.Dependencies.GrafanaDependency)
			dir := path.Dir(root + rel)
			for _, logo := range []string{m.Info.Logos.Small, m.Info.Logos.Large} {
				require.Contains(t, files, path.Join(dir, logo), "logo")
			}
			require.Contains(t, files, path.Join(dir, "module.js"))
			if m.Alerting {
				require.True(t, m.Backend, "alerting needs backend: true")
			}
			if m.Executable == "" {
				require.False(t, m.Backend, "backend: true needs an executable")
				return
			}
			require.True(t, m.Backend)
			exe := path.Clean(path.Join(dir, m.Executable))
			found := 0
			for _, suffix := range binarySuffixes {
				f, ok := files[exe+suffix]
				if !ok {
					continue
				}
				found++
				if !strings.HasSuffix(suffix, ".exe") {
					require.Equal(t, os.FileMode(0o755), f.Mode().Perm(), "%s must be exactly 0755", f.Name)
				}
				requireBinaryPlatform(t, read(f.Name), suffix)
			}
			require.Positive(t, found, "no binary for executable %s", m.Executable)
			require.Contains(t, files, exe+"_linux_amd64")
			require.Contains(t, files, exe+"_"+runtime.GOOS+"_"+runtime.GOARCH+map[bool]string{true: ".exe"}[runtime.GOOS == "windows"], "a binary for this platform")
			for name := range files {
				if strings.HasPrefix(name, exe) {
					require.True(t, slices.ContainsFunc(binarySuffixes, func(s string) bool { return name == exe+s }), "unexpected file %s next to the binaries", name)
				}
			}
		})
	}

	t.Run("includes", func(t *testing.T) {
		declared := map[string]string{}
		for _, inc := range app.Includes {
			if inc.Path != "" {
				declared[inc.Path] = inc.Type
			}
		}
		for rel, m := range metas {
			if rel == "plugin.json" {
				continue
			}
			require.Contains(t, declared, rel, "nested plugin %s declared with its path", rel)
			require.Equal(t, m.Type, declared[rel], "declared type of %s", rel)
		}
		for _, inc := range app.Includes {
			if inc.Type == "dashboard" {
				require.Contains(t, files, root+inc.Path, "dashboard %s", inc.Name)
			}
		}
		ds := metas["datasource/plugin.json"]
		require.Equal(t, plugin.ID, ds.ID, "the backend serves the id the archive declares")
	})

	t.Run("LICENSE and CHANGELOG", func(t *testing.T) {
		lic := string(read(root + "LICENSE"))
		require.Contains(t, lic, "Apache License")
		require.Contains(t, lic, "Version 2.0, January 2004")
		require.Contains(t, lic, "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION")
		require.Contains(t, lic, "END OF TERMS AND CONDITIONS", "the whole licence text")
		cl := read(root + "CHANGELOG.md")
		require.Contains(t, string(cl), "## "+pkg.Version, "the changelog has an entry for this version")
		require.Contains(t, files, root+"README.md")
	})

	t.Run("matches the sources", func(t *testing.T) {
		// A stale archive (built before plugin.json changed) fails here.
		require.Equal(t, src.ID, app.ID)
		require.Equal(t, len(src.Includes), len(app.Includes))
		for i := range src.Includes {
			require.Equal(t, src.Includes[i], app.Includes[i])
		}
	})
}

func readJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v), file)
}

// requireBinaryPlatform checks that an executable is of the OS and
// architecture its suffix names.
func requireBinaryPlatform(t *testing.T, b []byte, suffix string) {
	t.Helper()
	r := bytes.NewReader(b)
	var got string
	switch {
	case strings.HasPrefix(suffix, "_linux_"):
		f, err := elf.NewFile(r)
		require.NoError(t, err, suffix)
		got = "_linux_" + map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
	case strings.HasPrefix(suffix, "_darwin_"):
		f, err := macho.NewFile(r)
		require.NoError(t, err, suffix)
		got = "_darwin_" + map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
	case strings.HasPrefix(suffix, "_windows_"):
		f, err := pe.NewFile(r)
		require.NoError(t, err, suffix)
		got = "_windows_" + map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64"}[f.Machine] + ".exe"
	default:
		require.Fail(t, fmt.Sprintf("unknown suffix %s", suffix))
	}
	require.Equal(t, suffix, got, "binary platform")
}
