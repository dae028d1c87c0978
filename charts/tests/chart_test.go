// Package charttest renders the sentinel-mesh Helm chart with the Helm SDK (no
// cluster) for every ci/*-values.yaml scenario and checks the objects strictly against
// the Kubernetes API types.
package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/sentinel-mesh/sentinel-mesh/internal/config"
)

const (
	chartDir  = "../sentinel-mesh"
	namespace = "monitoring"
	release   = "sm"
	httpPort  = 9464
)

// expectedAPIVersion of every kind the chart may render.
var expectedAPIVersion = map[string]string{
	"ConfigMap":               "v1",
	"Secret":                  "v1",
	"Service":                 "v1",
	"ServiceAccount":          "v1",
	"PersistentVolumeClaim":   "v1",
	"Deployment":              "apps/v1",
	"StatefulSet":             "apps/v1",
	"CronJob":                 "batch/v1",
	"NetworkPolicy":           "networking.k8s.io/v1",
	"PodDisruptionBudget":     "policy/v1",
	"ClusterRole":             "rbac.authorization.k8s.io/v1",
	"ClusterRoleBinding":      "rbac.authorization.k8s.io/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"ServiceMonitor":          "monitoring.coreos.com/v1",
	"PrometheusRule":          "monitoring.coreos.com/v1",
}

func newObject(kind string) any {
	switch kind {
	case "ConfigMap":
		return &corev1.ConfigMap{}
	case "Secret":
		return &corev1.Secret{}
	case "Service":
		return &corev1.Service{}
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "Deployment":
		return &appsv1.Deployment{}
	case "StatefulSet":
		return &appsv1.StatefulSet{}
	case "CronJob":
		return &batchv1.CronJob{}
	case "NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "ServiceMonitor", "PrometheusRule":
		return &unstructured.Unstructured{}
	}
	return nil
}

type object struct {
	Kind, Name, Source string
	Obj                any
}

// rendered is the chart rendered for one scenario.
type rendered struct {
	values  chartutil.Values
	objects []object
}

func (r rendered) all(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) get(kind, name string) (object, bool) {
	for _, o := range r.objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func (r rendered) kinds() map[string]int {
	m := map[string]int{}
	for _, o := range r.objects {
		m[o.Kind]++
	}
	return m
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	require.NoError(t, err)
	return c
}

func capabilities() *chartutil.Capabilities {
	caps := *chartutil.DefaultCapabilities
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	return &caps
}

// render renders the chart with the given values (like `helm template`).
func render(t *testing.T, c *chart.Chart, vals map[string]any) (map[string]string, chartutil.Values, error) {
	t.Helper()
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{
		Name: release, Namespace: namespace, Revision: 1, IsInstall: true,
	}, capabilities())
	if err != nil {
		return nil, nil, err
	}
	out, err := engine.Render(c, rv)
	return out, rv, err
}

// decode splits the rendered manifests and decodes every object strictly.
func decode(t *testing.T, files map[string]string) []object {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []object
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		docs := releaseutil.SplitManifests(files[name])
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			doc := docs[k]
			if strings.TrimSpace(doc) == "" {
				continue
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			require.NoError(t, err, "%s: not YAML:\n%s", name, doc)
			if string(js) == "null" {
				continue // only comments
			}
			var tm metav1.TypeMeta
			require.NoError(t, json.Unmarshal(js, &tm), name)
			want, known := expectedAPIVersion[tm.Kind]
			require.True(t, known, "%s: unexpected kind %q", name, tm.Kind)
			assert.Equal(t, want, tm.APIVersion, "%s: apiVersion of %s", name, tm.Kind)
			obj := newObject(tm.Kind)
			if u, ok := obj.(*unstructured.Unstructured); ok {
				require.NoError(t, u.UnmarshalJSON(js), name)
			} else {
				dec := json.NewDecoder(bytes.NewReader(js))
				dec.DisallowUnknownFields()
				require.NoError(t, dec.Decode(obj), "%s: %s does not decode strictly", name, tm.Kind)
			}
			var meta struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			require.NoError(t, json.Unmarshal(js, &meta))
			require.NotEmpty(t, meta.Metadata.Name, "%s: %s without name", name, tm.Kind)
			assert.LessOrEqual(t, len(meta.Metadata.Name), 63, "%s: name too long", meta.Metadata.Name)
			switch tm.Kind {
			case "ClusterRole", "ClusterRoleBinding":
				assert.Empty(t, meta.Metadata.Namespace)
			default:
				assert.Equal(t, namespace, meta.Metadata.Namespace, "%s %s namespace", tm.Kind, meta.Metadata.Name)
			}
			assert.Equal(t, release, meta.Metadata.Labels["app.kubernetes.io/instance"], "%s %s labels", tm.Kind, meta.Metadata.Name)
			objs = append(objs, object{Kind: tm.Kind, Name: meta.Metadata.Name, Source: name, Obj: obj})
		}
	}
	return objs
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	require.NoError(t, err)
	return v.AsMap()
}

func scenarios(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4)
	return files
}

// workload is a pod template with its owner.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector // nil for CronJobs
	pod        corev1.PodTemplateSpec
}

func workloads(r rendered) []workload {
	var ws []workload
	for _, o := range r.objects {
		switch x := o.Obj.(type) {
		case *appsv1.Deployment:
			ws = append(ws, workload{o.Kind, o.Name, x.Spec.Selector, x.Spec.Template})
		case *appsv1.StatefulSet:
			ws = append(ws, workload{o.Kind, o.Name, x.Spec.Selector, x.Spec.Template})
		case *batchv1.CronJob:
			ws = append(ws, workload{o.Kind, o.Name, nil, x.Spec.JobTemplate.Spec.Template})
		}
	}
	return ws
}

func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	return !s.Empty() && s.Matches(labels.Set(lbls))
}

func TestScenarios(t *testing.T) {
	c := loadChart(t)
	for _, f := range scenarios(t) {
		name := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		t.Run(name, func(t *testing.T) {
			files, vals, err := render(t, c, readValues(t, f))
			require.NoError(t, err)
			r := rendered{values: vals, objects: decode(t, files)}
			require.NotEmpty(t, r.objects)
			checkWorkloads(t, r)
			checkServices(t, r)
			checkReferences(t, r)
			checkOptional(t, r)
			switch name {
			case "default":
				checkDefault(t, r)
			case "scaled-kafka":
				checkScaled(t, r)
			case "all-optional-on":
				checkAllOptional(t, r)
			case "tls-auth":
				checkTLSAuth(t, r)
			default:
				t.Logf("no scenario-specific checks for %s", name)
			}
		})
	}
}

func boolPtr(p *bool) bool { return p != nil && *p }

func checkSecurityContext(t *testing.T, w workload, ctr corev1.Container) {
	t.Helper()
	where := fmt.Sprintf("%s %s container %s", w.kind, w.name, ctr.Name)
	psc := w.pod.Spec.SecurityContext
	sc := ctr.SecurityContext
	if !assert.NotNil(t, sc, "%s: securityContext", where) {
		return
	}
	assert.True(t, boolPtr(sc.RunAsNonRoot) || (psc != nil && boolPtr(psc.RunAsNonRoot)), "%s: runAsNonRoot", where)
	assert.True(t, boolPtr(sc.ReadOnlyRootFilesystem), "%s: readOnlyRootFilesystem", where)
	if assert.NotNil(t, sc.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation set", where) {
		assert.False(t, *sc.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation", where)
	}
	assert.False(t, boolPtr(sc.Privileged), "%s: privileged", where)
	if assert.NotNil(t, sc.Capabilities, "%s: capabilities", where) {
		assert.Contains(t, sc.Capabilities.Drop, corev1.Capability("ALL"), "%s: drop ALL", where)
		assert.Empty(t, sc.Capabilities.Add, "%s: no added capabilities", where)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && psc != nil {
		seccomp = psc.SeccompProfile
	}
	if assert.NotNil(t, seccomp, "%s: seccompProfile", where) {
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, seccomp.Type, "%s: seccomp", where)
	}
	if sc.RunAsUser != nil {
		assert.NotZero(t, *sc.RunAsUser, "%s: runAsUser", where)
	}
}

func arg(ctr corev1.Container, flag string) (string, bool) {
	for _, a := range ctr.Args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

func webTLS(r rendered) bool {
	v, _ := r.values.PathValue("Values.web.tls.enabled")
	b, _ := v.(bool)
	return b
}

func checkProbe(t *testing.T, where string, p *corev1.Probe, path string, tls bool) {
	t.Helper()
	if !assert.NotNil(t, p, where) || !assert.NotNil(t, p.HTTPGet, "%s: httpGet", where) {
		return
	}
	assert.Equal(t, path, p.HTTPGet.Path, where)
	assert.Equal(t, "http", p.HTTPGet.Port.String(), "%s: port", where)
	want := corev1.URISchemeHTTP
	if tls {
		want = corev1.URISchemeHTTPS
	}
	assert.Equal(t, want, p.HTTPGet.Scheme, "%s: scheme", where)
}

func checkWorkloads(t *testing.T, r rendered) {
	ws := workloads(r)
	require.NotEmpty(t, ws)
	for _, w := range ws {
		podLabels := w.pod.Labels
		if w.selector != nil {
			assert.True(t, selects(t, w.selector, podLabels), "%s %s: selector %v does not match pod labels %v", w.kind, w.name, w.selector, podLabels)
		}
		psc := w.pod.Spec.SecurityContext
		if assert.NotNil(t, psc, "%s %s: pod securityContext", w.kind, w.name) {
			assert.True(t, boolPtr(psc.RunAsNonRoot), "%s %s: pod runAsNonRoot", w.kind, w.name)
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range w.pod.Spec.Volumes {
			volumes[v.Name] = v
		}
		claimTemplates := map[string]bool{}
		if o, ok := r.get(w.kind, w.name); ok {
			if ss, ok := o.Obj.(*appsv1.StatefulSet); ok {
				for _, pvc := range ss.Spec.VolumeClaimTemplates {
					claimTemplates[pvc.Name] = true
				}
			}
		}
		all := append(append([]corev1.Container{}, w.pod.Spec.InitContainers...), w.pod.Spec.Containers...)
		require.NotEmpty(t, w.pod.Spec.Containers)
		for _, ctr := range all {
			checkSecurityContext(t, w, ctr)
			assert.NotEmpty(t, ctr.Resources.Requests, "%s %s container %s: resource requests", w.kind, w.name, ctr.Name)
			for _, m := range ctr.VolumeMounts {
				_, ok := volumes[m.Name]
				assert.True(t, ok || claimTemplates[m.Name], "%s %s container %s: mount %s has no volume", w.kind, w.name, ctr.Name, m.Name)
			}
		}
		for _, ctr := range w.pod.Spec.Containers {
			where := fmt.Sprintf("%s %s container %s", w.kind, w.name, ctr.Name)
			if w.kind == "CronJob" {
				assert.Equal(t, []string{"node", "src/train.js"}, ctr.Command, where)
				assert.Contains(t, strings.Join(ctr.Args, " "), "--source prometheus --prom-url ", where)
				assert.Contains(t, ctr.Args, "--prom-query", where)
				assert.Contains(t, ctr.Args, "--out", where)
				continue
			}
			target, ok := arg(ctr, "--target")
			assert.True(t, ok, "%s: --target", where)
			assert.Equal(t, map[string]string{"all": "all-in-one", "receiver": "receiver", "detector": "detector"}[target],
				podLabels["app.kubernetes.io/component"], "%s: --target=%s and component label", where, target)
			ports := map[string]int32{}
			for _, p := range ctr.Ports {
				ports[p.Name] = p.ContainerPort
			}
			assert.Equal(t, map[string]int32{"http": httpPort}, ports, "%s: container ports", where)
			la, _ := arg(ctr, "--web.listen-address")
			assert.Equal(t, fmt.Sprintf(":%d", httpPort), la, where)
			_, hasWebConfig := arg(ctr, "--web.config.file")
			assert.Equal(t, webTLS(r) || basicAuth(r), hasWebConfig, "%s: --web.config.file", where)
			tls := webTLS(r)
			checkStorage(t, w, ctr, target, claimTemplates)
			checkProbe(t, where+" liveness", ctr.LivenessProbe, "/-/healthy", tls)
			checkProbe(t, where+" readiness", ctr.ReadinessProbe, "/-/ready", tls)
			checkProbe(t, where+" startup", ctr.StartupProbe, "/-/healthy", tls)
		}
	}
}

func basicAuth(r rendered) bool {
	v, _ := r.values.PathValue("Values.web.basicAuth.enabled")
	b, _ := v.(bool)
	return b
}

// checkServices: every Service selects the pods of a workload, and its target port is
// a named container port of those pods.
func checkServices(t *testing.T, r rendered) {
	ws := workloads(r)
	for _, o := range r.all("Service") {
		svc := o.Obj.(*corev1.Service)
		require.NotEmpty(t, svc.Spec.Selector, "Service %s selector", o.Name)
		var matched []workload
		for _, w := range ws {
			if w.kind != "CronJob" && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.pod.Labels)) {
				matched = append(matched, w)
			}
		}
		if !assert.Len(t, matched, 1, "Service %s selects exactly one workload", o.Name) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			found := false
			for _, ctr := range matched[0].pod.Spec.Containers {
				for _, cp := range ctr.Ports {
					if cp.Name == p.TargetPort.String() || (p.TargetPort.IntValue() != 0 && cp.ContainerPort == int32(p.TargetPort.IntValue())) {
						found = true
					}
				}
			}
			assert.True(t, found, "Service %s port %s: targetPort %s is no container port of %s", o.Name, p.Name, p.TargetPort.String(), matched[0].name)
		}
		if ss, ok := r.get("StatefulSet", strings.TrimSuffix(o.Name, "-headless")); ok && strings.HasSuffix(o.Name, "-headless") {
			assert.Equal(t, o.Name, ss.Obj.(*appsv1.StatefulSet).Spec.ServiceName)
			assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
		}
	}
	for _, o := range r.all("StatefulSet") {
		_, ok := r.get("Service", o.Obj.(*appsv1.StatefulSet).Spec.ServiceName)
		assert.True(t, ok, "StatefulSet %s: governing Service exists", o.Name)
	}
}

// external names a scenario may reference without rendering them.
func externalSecrets(r rendered) map[string]bool {
	ext := map[string]bool{}
	for _, p := range []string{"Values.web.tls.existingSecret", "Values.web.existingConfigSecret"} {
		if v, _ := r.values.PathValue(p); v != nil && v != "" {
			ext[v.(string)] = true
		}
	}
	return ext
}

// checkReferences: ConfigMaps, Secrets, PVCs and the ServiceAccount referenced by pods exist.
func checkReferences(t *testing.T, r rendered) {
	ext := externalSecrets(r)
	for _, w := range workloads(r) {
		for _, v := range w.pod.Spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				_, ok := r.get("ConfigMap", v.ConfigMap.Name)
				assert.True(t, ok, "%s %s: ConfigMap %s", w.kind, w.name, v.ConfigMap.Name)
			case v.Secret != nil:
				_, ok := r.get("Secret", v.Secret.SecretName)
				assert.True(t, ok || ext[v.Secret.SecretName], "%s %s: Secret %s", w.kind, w.name, v.Secret.SecretName)
			case v.PersistentVolumeClaim != nil:
				_, ok := r.get("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
				assert.True(t, ok, "%s %s: PVC %s", w.kind, w.name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		sa := w.pod.Spec.ServiceAccountName
		_, ok := r.get("ServiceAccount", sa)
		assert.True(t, ok, "%s %s: ServiceAccount %s", w.kind, w.name, sa)
	}
	for _, o := range r.all("HorizontalPodAutoscaler") {
		ref := o.Obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec.ScaleTargetRef
		assert.Equal(t, "apps/v1", ref.APIVersion)
		_, ok := r.get(ref.Kind, ref.Name)
		assert.True(t, ok, "HPA %s: target %s %s", o.Name, ref.Kind, ref.Name)
		if d, ok := r.get("Deployment", ref.Name); ok {
			assert.Nil(t, d.Obj.(*appsv1.Deployment).Spec.Replicas, "Deployment %s leaves replicas to the HPA", ref.Name)
		}
	}
	for _, o := range r.all("PodDisruptionBudget") {
		pdb := o.Obj.(*policyv1.PodDisruptionBudget)
		n := 0
		for _, w := range workloads(r) {
			if w.selector != nil && selects(t, pdb.Spec.Selector, w.pod.Labels) {
				n++
			}
		}
		assert.Equal(t, 1, n, "PDB %s selects exactly one workload", o.Name)
	}
	for _, o := range r.all("ClusterRoleBinding") {
		crb := o.Obj.(*rbacv1.ClusterRoleBinding)
		_, ok := r.get("ClusterRole", crb.RoleRef.Name)
		assert.True(t, ok, "ClusterRoleBinding %s: role", o.Name)
		for _, s := range crb.Subjects {
			_, ok := r.get("ServiceAccount", s.Name)
			assert.True(t, ok && s.Namespace == namespace, "ClusterRoleBinding %s: subject %s/%s", o.Name, s.Namespace, s.Name)
		}
	}
	for _, o := range r.all("NetworkPolicy") {
		np := o.Obj.(*networkingv1.NetworkPolicy)
		for _, w := range workloads(r) {
			if w.kind != "CronJob" {
				assert.True(t, selects(t, &np.Spec.PodSelector, w.pod.Labels), "NetworkPolicy %s covers %s", o.Name, w.name)
			}
		}
	}
}

// checkOptional: ServiceMonitor, PrometheusRule and dashboards, when rendered.
func checkOptional(t *testing.T, r rendered) {
	for _, o := range r.all("ServiceMonitor") {
		u := o.Obj.(*unstructured.Unstructured)
		sel, found, err := unstructured.NestedMap(u.Object, "spec", "selector")
		require.NoError(t, err)
		require.True(t, found)
		js, _ := json.Marshal(sel)
		var ls metav1.LabelSelector
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&ls))
		scraped := 0
		for _, s := range r.all("Service") {
			svc := s.Obj.(*corev1.Service)
			if selects(t, &ls, svc.Labels) {
				scraped++
				assert.NotEqual(t, corev1.ClusterIPNone, svc.Spec.ClusterIP, "ServiceMonitor must not scrape headless Service %s (pods twice)", s.Name)
			}
		}
		assert.Positive(t, scraped, "ServiceMonitor %s selects a Service", o.Name)
		eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
		require.Len(t, eps, 1)
		ep := eps[0].(map[string]any)
		assert.Equal(t, "http", ep["port"])
		assert.Equal(t, "/metrics", ep["path"])
		assert.Equal(t, true, ep["honorLabels"], "anomaly_* series keep their own job/instance labels")
		if webTLS(r) {
			assert.Equal(t, "https", ep["scheme"])
		}
		if basicAuth(r) {
			assert.Contains(t, ep, "basicAuth")
		}
	}
	for _, o := range r.all("PrometheusRule") {
		checkPrometheusRule(t, r, o.Obj.(*unstructured.Unstructured))
	}
	dashboards := 0
	for _, o := range r.all("ConfigMap") {
		cm := o.Obj.(*corev1.ConfigMap)
		if cm.Labels["grafana_dashboard"] == "" {
			continue
		}
		dashboards++
		assert.Equal(t, "1", cm.Labels["grafana_dashboard"])
		assert.NotEmpty(t, cm.Annotations["grafana_folder"])
		require.Len(t, cm.Data, 1, "ConfigMap %s holds one dashboard", o.Name)
		for k, v := range cm.Data {
			assert.True(t, strings.HasSuffix(k, ".json"))
			var d map[string]any
			assert.NoError(t, json.Unmarshal([]byte(v), &d), "ConfigMap %s: dashboard JSON", o.Name)
			assert.NotEmpty(t, d["uid"])
		}
	}
	if v, _ := r.values.PathValue("Values.dashboards.enabled"); v == true {
		files, _ := filepath.Glob(filepath.Join(chartDir, "files", "dashboards", "*.json"))
		assert.NotEmpty(t, files)
		assert.Equal(t, len(files), dashboards, "one ConfigMap per dashboard file")
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string           `json:"name"`
		Rules []map[string]any `json:"rules"`
	} `json:"groups"`
}

func readRuleFile(t *testing.T, name string) ruleFile {
	b, err := os.ReadFile(filepath.Join(chartDir, "files", name))
	require.NoError(t, err, "run `make mixin`")
	var rf ruleFile
	require.NoError(t, yaml.UnmarshalStrict(b, &rf), name)
	return rf
}

func checkPrometheusRule(t *testing.T, r rendered, u *unstructured.Unstructured) {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	js, _ := json.Marshal(spec)
	var got ruleFile
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&got))

	disabled := map[string]bool{}
	if v, _ := r.values.PathValue("Values.prometheusRule.disabledAlerts"); v != nil {
		for _, a := range v.([]any) {
			disabled[a.(string)] = true
		}
	}
	if v, _ := r.values.PathValue("Values.retraining.enabled"); v != true {
		disabled["SentinelMeshModelStale"] = true
	}
	var want, have []string
	for _, f := range []string{"alerts.yaml", "rules.yaml"} {
		for _, g := range readRuleFile(t, f).Groups {
			for _, rule := range g.Rules {
				name, _ := rule["alert"].(string)
				if name == "" {
					name = rule["record"].(string)
				}
				if !disabled[name] {
					want = append(want, name)
				}
			}
		}
	}
	extra, _ := r.values.PathValue("Values.prometheusRule.additionalAlertLabels")
	for _, g := range got.Groups {
		for _, rule := range g.Rules {
			name, isAlert := rule["alert"].(string)
			if !isAlert {
				name = rule["record"].(string)
			}
			have = append(have, name)
			assert.NotEmpty(t, rule["expr"], name)
			if isAlert {
				ann, _ := rule["annotations"].(map[string]any)
				assert.NotEmpty(t, ann["runbook_url"], "%s runbook_url", name)
				lbls, _ := rule["labels"].(map[string]any)
				assert.NotEmpty(t, lbls["severity"], "%s severity", name)
				if m, ok := extra.(map[string]any); ok {
					for k, v := range m {
						assert.Equal(t, v, lbls[k], "%s additional label %s", name, k)
					}
				}
			}
		}
	}
	assert.Equal(t, want, have, "PrometheusRule holds the mixin's rules minus the disabled alerts")

	// promtool (set PROMTOOL, as charts/test.sh does) checks the rendered rules.
	if promtool := os.Getenv("PROMTOOL"); promtool != "" {
		b, err := yaml.Marshal(spec)
		require.NoError(t, err)
		f := filepath.Join(t.TempDir(), "rules.yaml")
		require.NoError(t, os.WriteFile(f, b, 0o644))
		out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
		assert.NoError(t, err, "promtool check rules:\n%s", out)
	}
}

func kindsOf(r rendered) []string {
	var ks []string
	for k, n := range r.kinds() {
		ks = append(ks, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(ks)
	return ks
}

// checkStorage: a replica that scores keeps its checkpoints (--storage.path)
// on the data volume, a PVC when persistence is on, checkpoints at a valid
// interval, and is given time for the shutdown checkpoint.
func checkStorage(t *testing.T, w workload, ctr corev1.Container, target string, claimTemplates map[string]bool) {
	where := fmt.Sprintf("%s %s container %s", w.kind, w.name, ctr.Name)
	sp, ok := arg(ctr, "--storage.path")
	require.True(t, ok, "%s: --storage.path", where)
	mounted := false
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == sp {
			mounted = m.Name == "data" && !m.ReadOnly
		}
	}
	assert.True(t, mounted, "%s: --storage.path %s on the writable data volume", where, sp)
	ci, hasInterval := arg(ctr, "--storage.checkpoint-interval")
	if target == "receiver" {
		assert.False(t, hasInterval, "%s: a receiver keeps no state", where)
		return
	}
	d, err := time.ParseDuration(ci)
	if assert.NoError(t, err, "%s: --storage.checkpoint-interval", where) {
		assert.Positive(t, d, where)
	}
	if w.kind == "StatefulSet" && claimTemplates["data"] {
		for _, v := range w.pod.Spec.Volumes {
			assert.NotEqual(t, "data", v.Name, "%s: data is the PVC, not a pod volume", where)
		}
	}
	grace := w.pod.Spec.TerminationGracePeriodSeconds
	if assert.NotNil(t, grace, where) {
		// 10 s of HTTP shutdown, the outputs' last sends (their timeouts),
		// then a checkpoint of ~5 s at 1M series (docs/operations.md).
		assert.GreaterOrEqual(t, *grace, int64(45), "%s: terminationGracePeriodSeconds covers the shutdown checkpoint", where)
	}
}

func checkDefault(t *testing.T, r rendered) {
	assert.Equal(t, []string{"ConfigMap=1", "Service=2", "ServiceAccount=1", "StatefulSet=1"}, kindsOf(r),
		"optional objects are off by default")
	ss, ok := r.get("StatefulSet", "sm-sentinel-mesh")
	require.True(t, ok)
	sts := ss.Obj.(*appsv1.StatefulSet)
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1, "state on a PVC")
	assert.Equal(t, "data", sts.Spec.VolumeClaimTemplates[0].Name)
	ctr := sts.Spec.Template.Spec.Containers[0]
	sp, _ := arg(ctr, "--storage.path")
	assert.Equal(t, "/data", sp)
	ci, _ := arg(ctr, "--storage.checkpoint-interval")
	assert.Equal(t, "5m", ci)
	_, hasModelDir := arg(ctr, "--model.dir")
	assert.False(t, hasModelDir, "embedded model by default")
	assert.False(t, boolPtr(sts.Spec.Template.Spec.AutomountServiceAccountToken), "no API token without kubernetes.enabled")
}

func checkScaled(t *testing.T, r rendered) {
	k := r.kinds()
	assert.Equal(t, 0, k["StatefulSet"]-1, "one StatefulSet (detectors)")
	assert.Equal(t, 1, k["Deployment"], "receiver Deployment")
	assert.Equal(t, 1, k["HorizontalPodAutoscaler"])
	assert.Equal(t, 2, k["PodDisruptionBudget"])
	_, ok := r.get("StatefulSet", "sm-sentinel-mesh-detector")
	assert.True(t, ok)
	d, ok := r.get("Deployment", "sm-sentinel-mesh-receiver")
	require.True(t, ok)
	target, _ := arg(d.Obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0], "--target")
	assert.Equal(t, "receiver", target)
	// The main Service (remote_write endpoint) goes to the receivers.
	svc, ok := r.get("Service", "sm-sentinel-mesh")
	require.True(t, ok)
	assert.Equal(t, "receiver", svc.Obj.(*corev1.Service).Spec.Selector["app.kubernetes.io/component"])
	cm, ok := r.get("ConfigMap", "sm-sentinel-mesh-config")
	require.True(t, ok)
	// The real parser (strict); TestConfigParses checks every scenario the same way.
	cfg, err := config.Parse([]byte(cm.Obj.(*corev1.ConfigMap).Data["config.yaml"]))
	require.NoError(t, err)
	assert.Len(t, cfg.Kafka.Brokers, 2)
	assert.Equal(t, "sentinel-mesh-samples", cfg.Kafka.Producer.Topic)
	assert.Equal(t, []string{"sentinel-mesh-samples"}, cfg.Kafka.Consumer.Topics)
	assert.Equal(t, "sentinel-mesh-detector", cfg.Kafka.Consumer.Group)
}

func checkAllOptional(t *testing.T, r rendered) {
	k := r.kinds()
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget", "ClusterRole", "ClusterRoleBinding", "CronJob", "PersistentVolumeClaim"} {
		assert.Equal(t, 1, k[kind], kind)
	}
	assert.GreaterOrEqual(t, k["ConfigMap"], 4, "config + dashboards")

	cr, ok := r.get("ClusterRole", "sm-sentinel-mesh")
	require.True(t, ok)
	granted := map[string]map[string]bool{}
	for _, rule := range cr.Obj.(*rbacv1.ClusterRole).Rules {
		for _, res := range rule.Resources {
			for _, g := range rule.APIGroups {
				key := g + "/" + res
				if granted[key] == nil {
					granted[key] = map[string]bool{}
				}
				for _, v := range rule.Verbs {
					granted[key][v] = true
				}
			}
		}
	}
	for _, res := range []string{"/pods", "/nodes", "apps/replicasets", "apps/deployments", "apps/statefulsets", "apps/daemonsets"} {
		assert.Equal(t, map[string]bool{"get": true, "list": true, "watch": true}, granted[res], "ClusterRole verbs on %s", res)
	}
	ss, _ := r.get("StatefulSet", "sm-sentinel-mesh")
	pod := ss.Obj.(*appsv1.StatefulSet).Spec.Template.Spec
	assert.True(t, boolPtr(pod.AutomountServiceAccountToken), "kubernetes.enabled needs the API token")
	md, ok := arg(pod.Containers[0], "--model.dir")
	assert.True(t, ok)
	cj, _ := r.get("CronJob", "sm-sentinel-mesh-retraining")
	job := cj.Obj.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec
	assert.Equal(t, "sm-sentinel-mesh-models", job.Volumes[0].PersistentVolumeClaim.ClaimName)
	assert.Contains(t, job.Containers[0].Args, md, "training writes where the detector reads")
	found := false
	for _, m := range job.Containers[0].VolumeMounts {
		if m.MountPath == md {
			found = !m.ReadOnly
		}
	}
	assert.True(t, found, "training mounts the model PVC writable at %s", md)
	assert.Equal(t, batchv1.ForbidConcurrent, cj.Obj.(*batchv1.CronJob).Spec.ConcurrencyPolicy)
}

func checkTLSAuth(t *testing.T, r rendered) {
	sec, ok := r.get("Secret", "sm-sentinel-mesh-web-config")
	require.True(t, ok)
	var wc struct {
		TLSServerConfig struct {
			CertFile   string `json:"cert_file"`
			KeyFile    string `json:"key_file"`
			MinVersion string `json:"min_version"`
		} `json:"tls_server_config"`
		BasicAuthUsers map[string]string `json:"basic_auth_users"`
	}
	s := sec.Obj.(*corev1.Secret)
	require.NoError(t, yaml.UnmarshalStrict([]byte(s.StringData["web-config.yml"]), &wc))
	assert.Equal(t, "/etc/sentinel-mesh/tls/tls.crt", wc.TLSServerConfig.CertFile)
	assert.Equal(t, "/etc/sentinel-mesh/tls/tls.key", wc.TLSServerConfig.KeyFile)
	assert.Equal(t, "TLS12", wc.TLSServerConfig.MinVersion)
	assert.Contains(t, wc.BasicAuthUsers, "probe")
	for u, h := range wc.BasicAuthUsers {
		assert.Regexp(t, `^\$2[aby]\$\d\d\$`, h, "user %s: bcrypt hash", u)
	}
	for _, w := range workloads(r) {
		var mounts []string
		for _, m := range w.pod.Spec.Containers[0].VolumeMounts {
			mounts = append(mounts, m.MountPath)
		}
		assert.Contains(t, mounts, "/etc/sentinel-mesh/tls", w.name)
		assert.Contains(t, mounts, "/etc/sentinel-mesh/web", w.name)
		rp := w.pod.Spec.Containers[0].ReadinessProbe
		require.NotNil(t, rp)
		require.Len(t, rp.HTTPGet.HTTPHeaders, 1, "probes authenticate")
		assert.Equal(t, "Authorization", rp.HTTPGet.HTTPHeaders[0].Name)
	}
	_, ok = r.get("Secret", "sm-sentinel-mesh-client-auth")
	assert.True(t, ok)
}

// TestInvalidValues makes sure broken values are rejected.
func TestInvalidValues(t *testing.T) {
	c := loadChart(t)
	for name, vals := range map[string]map[string]any{
		"unknown mode":          {"mode": "cluster"},
		"unknown top-level key": {"replicaCount": 3},
		"scaled without kafka":  {"mode": "scaled"},
		"tls without cert":      {"web": map[string]any{"tls": map[string]any{"enabled": true}}},
		"basic auth no users":   {"web": map[string]any{"basicAuth": map[string]any{"enabled": true}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := render(t, c, vals)
			assert.Error(t, err)
		})
	}
}

// TestDecodeStrict makes sure the strict decoding rejects unknown fields.
func TestDecodeStrict(t *testing.T) {
	dec := json.NewDecoder(strings.NewReader(`{"spec":{"replica":1}}`))
	dec.DisallowUnknownFields()
	assert.Error(t, dec.Decode(&appsv1.Deployment{}))
}

// TestValuesDocumented checks that every key of values.yaml has a comment line right
// above it, except the fields of Kubernetes objects given as examples (securityContext,
// resources, probe timings), which are documented by the Kubernetes API.
func TestValuesDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	require.NoError(t, err)
	passthrough := map[string]bool{
		"podSecurityContext": true, "securityContext": true, "resources": true,
		"requests": true, "limits": true, "capabilities": true, "seccompProfile": true,
		"liveness": true, "readiness": true, "startup": true,
	}
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	prev := ""
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			prev = ""
			continue
		}
		if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") {
			prev = trimmed
			continue
		}
		key, _, ok := strings.Cut(trimmed, ":")
		if !ok || strings.ContainsAny(key, " \"'{[") {
			prev = trimmed
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		inPassthrough := false
		for _, f := range stack {
			if passthrough[f.key] {
				inPassthrough = true
			}
		}
		if !inPassthrough {
			assert.True(t, strings.HasPrefix(prev, "#"), "values.yaml:%d: key %q has no comment above it", i+1, key)
		}
		stack = append(stack, frame{indent, key})
		prev = trimmed
	}
}
