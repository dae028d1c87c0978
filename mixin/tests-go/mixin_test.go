// Package mixintest checks the Sentinel Mesh monitoring mixin: it evaluates the
// jsonnet, checks the dashboards, parses every PromQL expression, and checks that every
// alert has a runbook section and promtool unit tests (firing and not firing).
package mixintest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"
)

const mixinDir = ".."

var promql = parser.NewParser(parser.Options{})

type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type mixin struct {
	Alerts     ruleGroups                 `json:"alerts"`
	Rules      ruleGroups                 `json:"rules"`
	Dashboards map[string]json.RawMessage `json:"dashboards"`
}

func vm() *jsonnet.VM {
	v := jsonnet.MakeVM()
	v.Importer(&jsonnet.FileImporter{JPaths: []string{mixinDir}})
	return v
}

func evaluate(t *testing.T) mixin {
	t.Helper()
	out, err := vm().EvaluateAnonymousSnippet("eval.jsonnet", `
local m = import 'mixin.libsonnet';
{ alerts: m.prometheusAlerts, rules: m.prometheusRules, dashboards: m.grafanaDashboards }`)
	require.NoError(t, err)
	var m mixin
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&m))
	require.NotEmpty(t, m.Alerts.Groups)
	require.NotEmpty(t, m.Rules.Groups)
	require.NotEmpty(t, m.Dashboards)
	return m
}

func alerts(m mixin) []rule {
	var rs []rule
	for _, g := range m.Alerts.Groups {
		rs = append(rs, g.Rules...)
	}
	return rs
}

func records(m mixin) []rule {
	var rs []rule
	for _, g := range m.Rules.Groups {
		rs = append(rs, g.Rules...)
	}
	return rs
}

func TestRulesParse(t *testing.T) {
	m := evaluate(t)
	for _, r := range alerts(m) {
		assert.NotEmpty(t, r.Alert, "alerting rule without name: %q", r.Expr)
		_, err := promql.ParseExpr(r.Expr)
		assert.NoError(t, err, "alert %s", r.Alert)
		assert.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "alert %s severity", r.Alert)
		assert.NotEmpty(t, r.Annotations["summary"], "alert %s summary", r.Alert)
		assert.NotEmpty(t, r.Annotations["description"], "alert %s description", r.Alert)
	}
	for _, r := range records(m) {
		assert.Regexp(t, `^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`, r.Record, "recording rule name follows level:metric:operations")
		_, err := promql.ParseExpr(r.Expr)
		assert.NoError(t, err, "record %s", r.Record)
	}
}

// githubAnchors returns the anchors GitHub generates for the Markdown headings of a file.
func githubAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		anchors[a] = true
	}
	return anchors
}

func TestRunbooks(t *testing.T) {
	m := evaluate(t)
	anchors := githubAnchors(t, filepath.Join(mixinDir, "runbook.md"))
	const prefix = "https://github.com/sentinel-mesh/sentinel-mesh/blob/main/mixin/runbook.md#"
	seen := map[string]bool{}
	for _, r := range alerts(m) {
		url := r.Annotations["runbook_url"]
		if !assert.True(t, strings.HasPrefix(url, prefix), "alert %s runbook_url %q", r.Alert, url) {
			continue
		}
		anchor := strings.TrimPrefix(url, prefix)
		assert.True(t, anchors[anchor], "alert %s: runbook.md has no section #%s", r.Alert, anchor)
		seen[anchor] = true
	}
	// Every section of runbook.md below the title belongs to an alert.
	for a := range anchors {
		if a == "sentinel-mesh-runbook" {
			continue
		}
		assert.True(t, seen[a], "runbook.md section #%s belongs to no alert", a)
	}
}

type promtoolTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTests []struct {
			Alertname string        `yaml:"alertname"`
			ExpAlerts []interface{} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTests []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestPromtoolCoverage checks that the promtool unit tests cover every alert both
// firing and not firing, and every recording rule.
func TestPromtoolCoverage(t *testing.T) {
	m := evaluate(t)
	files, err := filepath.Glob(filepath.Join(mixinDir, "tests", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	firing, silent, exprs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var pt promtoolTests
		require.NoError(t, yaml.Unmarshal(b, &pt), f)
		for _, tc := range pt.Tests {
			for _, at := range tc.AlertRuleTests {
				if len(at.ExpAlerts) > 0 {
					firing[at.Alertname] = true
				} else {
					silent[at.Alertname] = true
				}
			}
			for _, et := range tc.PromQLExprTests {
				exprs[et.Expr] = true
			}
		}
	}
	for _, r := range alerts(m) {
		assert.True(t, firing[r.Alert], "no promtool test where %s fires", r.Alert)
		assert.True(t, silent[r.Alert], "no promtool test where %s does not fire", r.Alert)
	}
	for _, r := range records(m) {
		assert.True(t, exprs[r.Record], "no promtool test of recording rule %s", r.Record)
	}
}

type target struct {
	Expr string `json:"expr"`
}

type panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"`
	GridPos *struct {
		X, Y, W, H int
	} `json:"gridPos"`
}

type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

var (
	builtinVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)
	userVars    = regexp.MustCompile(`\$\{(\w+)(:\w+)?\}|\$(\w+)`)
	labelValues = regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
)

// substitute replaces Grafana template variables so that the expression can be
// parsed as PromQL: interval variables by a duration, text boxes by their default
// value (a list of label matchers), all others by a plain label value.
func substitute(expr string, vars map[string]variable) string {
	expr = builtinVars.ReplaceAllString(expr, "5m")
	return userVars.ReplaceAllStringFunc(expr, func(s string) string {
		m := userVars.FindStringSubmatch(s)
		name := m[1] + m[3]
		v, ok := vars[name]
		if ok && v.Type == "textbox" {
			var q string
			_ = json.Unmarshal(v.Query, &q)
			return q
		}
		return "value"
	})
}

func TestDashboards(t *testing.T) {
	m := evaluate(t)
	uids := map[string]string{}
	names := make([]string, 0, len(m.Dashboards))
	for name := range m.Dashboards {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := m.Dashboards[name]
		t.Run(name, func(t *testing.T) {
			assert.True(t, json.Valid(raw))
			assert.True(t, strings.HasSuffix(name, ".json"))
			var d dashboard
			require.NoError(t, json.Unmarshal(raw, &d))
			require.NotEmpty(t, d.UID)
			assert.LessOrEqual(t, len(d.UID), 40, "Grafana uids are at most 40 characters")
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %s used by %s and %s", d.UID, other, name)
			}
			uids[d.UID] = name
			require.NotEmpty(t, d.Panels)

			vars := map[string]variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			assert.Equal(t, "datasource", vars["datasource"].Type, "dashboard has a datasource variable")
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				var q struct{ Query string }
				require.NoError(t, json.Unmarshal(v.Query, &q), "variable %s", v.Name)
				lv := labelValues.FindStringSubmatch(q.Query)
				if assert.NotNil(t, lv, "variable %s: %q is not label_values(expr, label)", v.Name, q.Query) {
					_, err := promql.ParseExpr(substitute(lv[1], vars))
					assert.NoError(t, err, "variable %s: %q", v.Name, q.Query)
				}
			}

			ids := map[int]bool{}
			var check func(ps []panel)
			check = func(ps []panel) {
				for _, p := range ps {
					assert.False(t, ids[p.ID], "panel id %d used twice", p.ID)
					ids[p.ID] = true
					assert.NotEmpty(t, p.Title, "panel %d has a title", p.ID)
					if assert.NotNil(t, p.GridPos, "panel %q has a gridPos", p.Title) {
						assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q fits in 24 columns", p.Title)
					}
					if p.Type != "row" {
						assert.NotEmpty(t, p.Targets, "panel %q has queries", p.Title)
					}
					for _, tg := range p.Targets {
						e := substitute(tg.Expr, vars)
						_, err := promql.ParseExpr(e)
						assert.NoError(t, err, "panel %q: %q (as %q)", p.Title, tg.Expr, e)
					}
					check(p.Panels)
				}
			}
			check(d.Panels)
			for _, a := range d.Annotations.List {
				if a.Expr == "" {
					continue
				}
				_, err := promql.ParseExpr(substitute(a.Expr, vars))
				assert.NoError(t, err, "annotation %q", a.Name)
			}
		})
	}
}

// TestSubstituteCatchesBrokenExpressions makes sure the dashboard check can fail.
func TestSubstituteCatchesBrokenExpressions(t *testing.T) {
	vars := map[string]variable{"selector": {Type: "textbox", Query: json.RawMessage(`""`)}}
	_, err := promql.ParseExpr(substitute(`rate(foo{a=~"$tenant",$selector}[$__rate_interval])`, vars))
	assert.NoError(t, err)
	_, err = promql.ParseExpr(substitute(`rate(foo{a=~"$tenant"}[$__rate_interval]`, vars))
	assert.Error(t, err)
}

// TestGeneratedFilesUpToDate compares the mixin output with mixin/out (written by
// build.sh) and with the copies the Helm chart ships (charts/sentinel-mesh/files).
func TestGeneratedFilesUpToDate(t *testing.T) {
	for _, f := range []string{"alerts", "rules"} {
		want, err := vm().EvaluateFile(filepath.Join(mixinDir, f+".jsonnet"))
		require.NoError(t, err)
		var s string
		require.NoError(t, json.Unmarshal([]byte(want), &s))
		for _, dir := range []string{filepath.Join(mixinDir, "out"), filepath.Join(mixinDir, "..", "charts", "sentinel-mesh", "files")} {
			got, err := os.ReadFile(filepath.Join(dir, f+".yaml"))
			if assert.NoError(t, err, "run `make mixin`") {
				assert.Equal(t, s+"\n", string(got), "%s/%s.yaml is out of date: run `make mixin`", dir, f)
			}
		}
	}
	m := evaluate(t)
	chartDir := filepath.Join(mixinDir, "..", "charts", "sentinel-mesh", "files", "dashboards")
	entries, err := os.ReadDir(chartDir)
	require.NoError(t, err, "run `make mixin`")
	assert.Len(t, entries, len(m.Dashboards), "%s holds exactly the mixin's dashboards", chartDir)
	for name, raw := range m.Dashboards {
		got, err := os.ReadFile(filepath.Join(chartDir, name))
		if assert.NoError(t, err, "run `make mixin`") {
			assert.JSONEq(t, string(raw), string(got), "%s is out of date: run `make mixin`", name)
		}
	}
}

// TestMetricNamesExistInCode checks that every sentinel_mesh_* and anomaly_*
// metric the alerts, rules and dashboards use is registered by the Go code, so a
// renamed metric cannot leave an alert silently selecting nothing.
func TestMetricNamesExistInCode(t *testing.T) {
	m := evaluate(t)
	var used []string
	nameRE := regexp.MustCompile(`\b(sentinel_mesh_[a-z_]+|anomaly_(score|expected|lower|upper|open))\b`)
	collect := func(s string) {
		for _, n := range nameRE.FindAllString(s, -1) {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				n = strings.TrimSuffix(n, suffix)
			}
			used = append(used, n)
		}
	}
	for _, r := range append(alerts(m), records(m)...) {
		collect(r.Expr)
	}
	for _, d := range m.Dashboards {
		collect(string(d))
	}
	require.NotEmpty(t, used)

	var code strings.Builder
	root := filepath.Join(mixinDir, "..")
	require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".cache" || d.Name() == "grafana-plugin" || d.Name() == "mixin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			code.Write(b)
		}
		return nil
	}))
	src := code.String()
	missing := map[string]bool{}
	for _, n := range used {
		// A regex over names (e.g. sentinel_mesh_(remote_write_)?samples_dropped_total)
		// leaves fragments; only whole registered names are checked.
		if strings.HasSuffix(n, "_") {
			continue
		}
		if !strings.Contains(src, `"`+n+`"`) && !strings.Contains(src, n) {
			missing[n] = true
		}
	}
	require.Empty(t, missing, "metrics used by the mixin but not registered in the Go code")
}
