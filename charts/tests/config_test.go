package charttest

// The chart against the product itself: every configuration file the chart renders is
// parsed with the real (strict) config parser, and every flag the chart passes to the
// sentinel-mesh containers is checked against the binary built from this repository.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

// repoRoot is the root of the sentinel-mesh module (this module lives in charts/tests).
const repoRoot = "../.."

// extraConfigScenarios are value sets checked against the config parser besides
// ci/*-values.yaml: combinations the ci scenarios do not cover.
var extraConfigScenarios = map[string]map[string]any{
	// scaled mode with the Kubernetes enrichment and kafka settings from `config`
	// merged over the derived kafka section.
	"scaled-kubernetes-config-merge": {
		"mode":       "scaled",
		"kafka":      map[string]any{"brokers": []any{"kafka:9092"}, "topic": "samples", "consumerGroup": "detectors"},
		"kubernetes": map[string]any{"enabled": true},
		"config": map[string]any{
			"kafka": map[string]any{
				"client_id": "sm",
				"consumer":  map[string]any{"start_offset": "latest"},
				"producer":  map[string]any{"linger": "5ms"},
			},
			"kubernetes": map[string]any{"incident_window": "5m"},
			"detector":   map[string]any{"max_series": 5000},
		},
	},
	// retraining (model volume, --model.dir) in scaled mode with HTTPS.
	"scaled-retraining-tls": {
		"mode":       "scaled",
		"kafka":      map[string]any{"brokers": []any{"kafka:9092"}},
		"retraining": map[string]any{"enabled": true},
		"web":        map[string]any{"tls": map[string]any{"enabled": true, "existingSecret": "tls"}},
	},
}

type configScenario struct {
	name string
	vals map[string]any
}

func configScenarios(t *testing.T) []configScenario {
	t.Helper()
	var out []configScenario
	for _, f := range scenarios(t) {
		out = append(out, configScenario{strings.TrimSuffix(filepath.Base(f), "-values.yaml"), readValues(t, f)})
	}
	names := make([]string, 0, len(extraConfigScenarios))
	for n := range extraConfigScenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, configScenario{n, extraConfigScenarios[n]})
	}
	return out
}

func renderScenario(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	files, rv, err := render(t, loadChart(t), vals)
	require.NoError(t, err)
	r := rendered{values: rv, objects: decode(t, files)}
	require.NotEmpty(t, r.objects)
	return r
}

// smContainer is a Sentinel Mesh server container (not the training job) and its pod.
type smContainer struct {
	w     workload
	ctr   corev1.Container
	where string
}

func smContainers(t *testing.T, r rendered) []smContainer {
	t.Helper()
	var out []smContainer
	for _, w := range workloads(r) {
		if w.kind == "CronJob" {
			continue // training image, not the sentinel-mesh binary
		}
		for _, c := range w.pod.Spec.Containers {
			out = append(out, smContainer{w, c, fmt.Sprintf("%s %s container %s", w.kind, w.name, c.Name)})
		}
	}
	require.NotEmpty(t, out, "no sentinel-mesh containers rendered")
	return out
}

// mountedFile returns the content of the file at path in the container, following its
// volume mounts to the rendered ConfigMap or Secret.
func mountedFile(t *testing.T, r rendered, c smContainer, path string) []byte {
	t.Helper()
	var mount *corev1.VolumeMount
	for i, m := range c.ctr.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &c.ctr.VolumeMounts[i]
		}
	}
	require.NotNil(t, mount, "%s: no volume mount holds %s", c.where, path)
	rel := strings.TrimPrefix(path, strings.TrimSuffix(mount.MountPath, "/")+"/")
	if mount.SubPath != "" {
		rel = filepath.Join(mount.SubPath, rel)
	}
	var vol *corev1.Volume
	for i, v := range c.w.pod.Spec.Volumes {
		if v.Name == mount.Name {
			vol = &c.w.pod.Spec.Volumes[i]
		}
	}
	require.NotNil(t, vol, "%s: volume %s", c.where, mount.Name)
	key := func(items []corev1.KeyToPath) string {
		if len(items) == 0 {
			return rel
		}
		for _, it := range items {
			if it.Path == rel {
				return it.Key
			}
		}
		t.Fatalf("%s: volume %s does not project %s", c.where, vol.Name, rel)
		return ""
	}
	switch {
	case vol.ConfigMap != nil:
		o, ok := r.get("ConfigMap", vol.ConfigMap.Name)
		require.True(t, ok, "%s: ConfigMap %s not rendered", c.where, vol.ConfigMap.Name)
		cm := o.Obj.(*corev1.ConfigMap)
		k := key(vol.ConfigMap.Items)
		s, ok := cm.Data[k]
		require.True(t, ok, "%s: ConfigMap %s has no key %s", c.where, cm.Name, k)
		return []byte(s)
	case vol.Secret != nil:
		o, ok := r.get("Secret", vol.Secret.SecretName)
		require.True(t, ok, "%s: Secret %s not rendered", c.where, vol.Secret.SecretName)
		sec := o.Obj.(*corev1.Secret)
		k := key(vol.Secret.Items)
		if s, ok := sec.StringData[k]; ok {
			return []byte(s)
		}
		b, ok := sec.Data[k]
		require.True(t, ok, "%s: Secret %s has no key %s", c.where, sec.Name, k)
		return b
	}
	t.Fatalf("%s: %s is on volume %s, neither a ConfigMap nor a Secret", c.where, path, vol.Name)
	return nil
}

func valueAt(r rendered, path string) any {
	v, _ := r.values.PathValue("Values." + path)
	return v
}

// TestConfigParses renders every scenario and parses the configuration file of every
// sentinel-mesh container with internal/config.Parse, as the binary does at start.
func TestConfigParses(t *testing.T) {
	for _, sc := range configScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			r := renderScenario(t, sc.vals)
			for _, c := range smContainers(t, r) {
				path, ok := arg(c.ctr, "--config.file")
				require.True(t, ok, "%s: --config.file", c.where)
				raw := mountedFile(t, r, c, path)
				cfg, err := config.Parse(raw)
				require.NoError(t, err, "%s: %s is rejected by internal/config:\n%s", c.where, path, raw)

				// What the targets need from the file (see internal/app/kafka.go).
				target, _ := arg(c.ctr, "--target")
				switch target {
				case "receiver":
					assert.True(t, cfg.Kafka.Enabled(), "%s: --target=receiver needs kafka.brokers", c.where)
					assert.NotEmpty(t, cfg.Kafka.Producer.Topic, "%s: kafka.producer.topic", c.where)
				case "detector":
					assert.True(t, cfg.Kafka.ConsumerEnabled(), "%s: --target=detector needs kafka.brokers and kafka.consumer.topics", c.where)
				}
				if valueAt(r, "mode") == "scaled" {
					topic := valueAt(r, "kafka.topic")
					assert.Equal(t, topic, cfg.Kafka.Producer.Topic, "%s: receivers produce to kafka.topic", c.where)
					assert.Equal(t, []string{fmt.Sprint(topic)}, cfg.Kafka.Consumer.Topics, "%s: detectors consume kafka.topic", c.where)
					assert.Equal(t, valueAt(r, "kafka.consumerGroup"), cfg.Kafka.Consumer.Group, "%s: consumer group", c.where)
					var brokers []string
					for _, b := range valueAt(r, "kafka.brokers").([]any) {
						brokers = append(brokers, fmt.Sprint(b))
					}
					assert.Equal(t, brokers, cfg.Kafka.Brokers, "%s: kafka.brokers", c.where)
				} else {
					assert.False(t, cfg.Kafka.Enabled(), "%s: no kafka in all-in-one mode unless configured", c.where)
				}
				k8sOn, _ := valueAt(r, "kubernetes.enabled").(bool)
				assert.Equal(t, k8sOn, cfg.Kubernetes.Enabled, "%s: kubernetes.enabled", c.where)
			}
		})
	}
}

// TestConfigMerge: keys of `config` win over, and merge into, the derived sections.
func TestConfigMerge(t *testing.T) {
	r := renderScenario(t, extraConfigScenarios["scaled-kubernetes-config-merge"])
	for _, c := range smContainers(t, r) {
		path, _ := arg(c.ctr, "--config.file")
		cfg, err := config.Parse(mountedFile(t, r, c, path))
		require.NoError(t, err, c.where)
		assert.Equal(t, "sm", cfg.Kafka.ClientID)
		assert.Equal(t, "latest", cfg.Kafka.Consumer.StartOffset)
		assert.Equal(t, "detectors", cfg.Kafka.Consumer.Group, "derived key kept next to a configured one")
		assert.Equal(t, []string{"samples"}, cfg.Kafka.Consumer.Topics)
		assert.Equal(t, "samples", cfg.Kafka.Producer.Topic)
		assert.Equal(t, 5*time.Millisecond, time.Duration(cfg.Kafka.Producer.Linger))
		assert.True(t, cfg.Kubernetes.Enabled)
		assert.Equal(t, 5*time.Minute, time.Duration(cfg.Kubernetes.IncidentWindow))
		assert.Equal(t, 5000, cfg.Detector.MaxSeries)
	}
}

// TestConfigParserStrict makes sure the parser used above rejects what the chart used
// to render (unknown keys), so TestConfigParses cannot pass vacuously.
func TestConfigParserStrict(t *testing.T) {
	for _, bad := range []string{
		"kafka:\n  brokers: [k:9092]\n  topic: t\n",
		"kafka:\n  brokers: [k:9092]\n  consumer_group: g\n",
		"series_limit: 10\n",
	} {
		_, err := config.Parse([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	binErr    error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// sentinelMeshBinary builds ./cmd/sentinel-mesh once into a temporary directory.
func sentinelMeshBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "sentinel-mesh-chart-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "sentinel-mesh")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/sentinel-mesh")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/sentinel-mesh: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// flagLine is a flag in kingpin's usage: "  -h, --[no-]help", "      --log.level=info".
var flagLine = regexp.MustCompile(`^ {2,8}(?:-[a-zA-Z], )?--(?:\[no-\])?([a-zA-Z0-9][a-zA-Z0-9._-]*)`)

// serveFlags runs `sentinel-mesh serve --help` and returns the flag names it lists.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(sentinelMeshBinary(t), "serve", "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "sentinel-mesh serve --help:\n%s%s", stdout.String(), stderr.String())
	flags := map[string]bool{}
	for _, line := range strings.Split(stdout.String()+"\n"+stderr.String(), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flags[m[1]] = true
		}
	}
	// Guard against a changed usage format making every check below vacuous.
	for _, f := range []string{"help", "config.file", "target", "web.listen-address", "log.level"} {
		require.True(t, flags[f], "--%s not found in `sentinel-mesh serve --help`; usage format changed?\n%s", f, stderr.String())
	}
	return flags
}

// TestContainerFlags checks the args of every sentinel-mesh container: every --flag is
// defined by the binary, and the binary accepts the whole command line (values of enum
// flags included) up to loading the configuration file.
func TestContainerFlags(t *testing.T) {
	defined := serveFlags(t)
	bin := sentinelMeshBinary(t)
	// A config file the parser rejects: the binary then exits right after parsing its
	// flags, with 1 ("invalid configuration") when they are fine and 2 when not.
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(badConfig, []byte("chart_test_unknown_key: 1\n"), 0o600))
	checked := map[string]bool{}
	for _, sc := range configScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			r := renderScenario(t, sc.vals)
			for _, c := range smContainers(t, r) {
				assert.Empty(t, c.ctr.Command, "%s: the image entrypoint runs the binary", c.where)
				for _, a := range c.ctr.Args {
					if !strings.HasPrefix(a, "--") {
						continue
					}
					name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
					assert.True(t, defined[strings.TrimPrefix(name, "no-")], "%s: flag --%s is not defined by sentinel-mesh serve", c.where, name)
				}
				args := make([]string, 0, len(c.ctr.Args))
				replaced := false
				for _, a := range c.ctr.Args {
					if strings.HasPrefix(a, "--config.file=") {
						a, replaced = "--config.file="+badConfig, true
					}
					args = append(args, a)
				}
				require.True(t, replaced, "%s: --config.file", c.where)
				key := strings.Join(args, "\x00")
				if checked[key] {
					continue
				}
				checked[key] = true
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var out bytes.Buffer
				cmd := exec.CommandContext(ctx, bin, args...)
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				cancel()
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee, "%s: sentinel-mesh %s: %v\n%s", c.where, strings.Join(c.ctr.Args, " "), err, out.String())
				assert.Equal(t, 1, ee.ExitCode(), "%s: sentinel-mesh rejects the args %q:\n%s", c.where, c.ctr.Args, out.String())
				assert.Contains(t, out.String(), "invalid configuration", "%s: %s", c.where, out.String())
			}
		})
	}
}
