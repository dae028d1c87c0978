package k8s

import (
	"context"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/exporter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ exporter.LabelEnricher    = (*Enricher)(nil)
	_ exporter.IncidentAssigner = (*Incidents)(nil)
)

func owner(kind, name string) []metav1.OwnerReference {
	ctrl := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &ctrl}}
}

func meta(ns, name string, owners []metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners, Labels: map[string]string{"big": "dropped by the transform"}}
}

func pod(ns, name, node string, owners []metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: meta(ns, name, owners), Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
}

func cluster() []runtime.Object {
	return []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{ZoneLabel: "eu-west-1a", "big": "dropped"}}},
		// node-2 has no Node object (not yet seen, or deleted).
		&appsv1.Deployment{ObjectMeta: meta("shop", "web", nil)},
		&appsv1.ReplicaSet{ObjectMeta: meta("shop", "web-5d8f", owner("Deployment", "web"))},
		pod("shop", "web-5d8f-abcde", "node-1", owner("ReplicaSet", "web-5d8f")),
		&appsv1.StatefulSet{ObjectMeta: meta("shop", "db", nil)},
		pod("shop", "db-0", "node-2", owner("StatefulSet", "db")),
		&appsv1.DaemonSet{ObjectMeta: meta("kube-system", "agent", nil)},
		pod("kube-system", "agent-xyz", "node-1", owner("DaemonSet", "agent")),
		&batchv1.Job{ObjectMeta: meta("shop", "report-28000000", owner("CronJob", "report"))},
		pod("shop", "report-28000000-q", "node-2", owner("Job", "report-28000000")),
		pod("shop", "standalone", "", nil),
		// The Deployment of this ReplicaSet was deleted; the orphan remains.
		&appsv1.ReplicaSet{ObjectMeta: meta("shop", "old-77", owner("Deployment", "old"))},
		pod("shop", "old-77-a", "node-1", owner("ReplicaSet", "old-77")),
		// This pod's ReplicaSet no longer exists.
		pod("shop", "gone-66-a", "node-1", owner("ReplicaSet", "gone-66")),
	}
}

func startEnricher(t *testing.T, objs ...runtime.Object) (*Enricher, *fake.Clientset, *prometheus.Registry) {
	t.Helper()
	return startEnricherWith(t, DefaultConfig(), objs...)
}

func startEnricherWith(t *testing.T, cfg Config, objs ...runtime.Object) (*Enricher, *fake.Clientset, *prometheus.Registry) {
	t.Helper()
	client := fake.NewClientset(objs...)
	reg := prometheus.NewPedanticRegistry()
	e, err := NewEnricher(cfg, client, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, e.HasSynced, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(e.metrics.synced) == 1 }, 10*time.Second, 5*time.Millisecond)
	return e, client, reg
}

func series(ns, pod string) detector.Labels {
	return detector.FromStrings("__name__", "http_requests_total", "namespace", ns, "pod", pod)
}

func enrich(e *Enricher, lbls detector.Labels) map[string]string {
	out := map[string]string{}
	e.Enrich("", lbls, func(n, v string) { out[n] = v })
	return out
}

func TestEnricherResolvesWorkloads(t *testing.T) {
	e, _, _ := startEnricher(t, cluster()...)
	tests := []struct {
		ns, pod string
		want    map[string]string
	}{
		{"shop", "web-5d8f-abcde", map[string]string{"workload": "web", "workload_kind": "Deployment", "node": "node-1", "zone": "eu-west-1a"}},
		{"shop", "db-0", map[string]string{"workload": "db", "workload_kind": "StatefulSet", "node": "node-2"}},
		{"kube-system", "agent-xyz", map[string]string{"workload": "agent", "workload_kind": "DaemonSet", "node": "node-1", "zone": "eu-west-1a"}},
		{"shop", "report-28000000-q", map[string]string{"workload": "report", "workload_kind": "CronJob", "node": "node-2"}},
		{"shop", "standalone", map[string]string{"workload": "standalone", "workload_kind": "Pod"}},
		{"shop", "old-77-a", map[string]string{"workload": "old-77", "workload_kind": "ReplicaSet", "node": "node-1", "zone": "eu-west-1a"}},
		{"shop", "gone-66-a", map[string]string{"workload": "gone-66", "workload_kind": "ReplicaSet", "node": "node-1", "zone": "eu-west-1a"}},
		{"shop", "unknown", map[string]string{}},
		{"other", "web-5d8f-abcde", map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.ns+"/"+tc.pod, func(t *testing.T) {
			require.Equal(t, tc.want, enrich(e, series(tc.ns, tc.pod)))
		})
	}
	require.Empty(t, enrich(e, detector.FromStrings("__name__", "up", "pod", "db-0")), "no namespace label")

	// The transform keeps only what the lookup needs.
	p, err := e.pods.Pods("shop").Get("db-0")
	require.NoError(t, err)
	require.Nil(t, p.Labels)
	require.Empty(t, p.Spec.Containers)
	n, err := e.nodes.Get("node-1")
	require.NoError(t, err)
	require.Equal(t, map[string]string{ZoneLabel: "eu-west-1a"}, n.Labels)
}

func TestEnricherOwnerAndNodeDeletion(t *testing.T) {
	e, client, _ := startEnricher(t, cluster()...)
	ctx := context.Background()

	// A deleted StatefulSet or DaemonSet is not reported as the workload:
	// its orphaned pods map to themselves.
	require.NoError(t, client.AppsV1().StatefulSets("shop").Delete(ctx, "db", metav1.DeleteOptions{}))
	require.NoError(t, client.AppsV1().DaemonSets("kube-system").Delete(ctx, "agent", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		db, agent := enrich(e, series("shop", "db-0")), enrich(e, series("kube-system", "agent-xyz"))
		return db["workload"] == "db-0" && db["workload_kind"] == "Pod" &&
			agent["workload"] == "agent-xyz" && agent["workload_kind"] == "Pod"
	}, 10*time.Second, 5*time.Millisecond)
	// Recreated: reported again.
	_, err := client.AppsV1().StatefulSets("shop").Create(ctx, &appsv1.StatefulSet{ObjectMeta: meta("shop", "db", nil)}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return enrich(e, series("shop", "db-0"))["workload_kind"] == "StatefulSet" }, 10*time.Second, 5*time.Millisecond)

	// A node that appears with a zone adds it; a deleted node's zone goes,
	// the node name (from the pod) stays.
	require.NotContains(t, enrich(e, series("shop", "db-0")), "zone")
	_, err = client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2", Labels: map[string]string{ZoneLabel: "eu-west-1b"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return enrich(e, series("shop", "db-0"))["zone"] == "eu-west-1b" }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, client.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		got := enrich(e, series("shop", "web-5d8f-abcde"))
		_, hasZone := got["zone"]
		return !hasZone && got["node"] == "node-1" && got["workload"] == "web"
	}, 10*time.Second, 5*time.Millisecond)
}

func TestEnricherZoneDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LabelNames.Zone = ""
	e, _, _ := startEnricherWith(t, cfg, cluster()...)
	require.Nil(t, e.nodes, "no node informer")
	require.Equal(t, map[string]string{"workload": "web", "workload_kind": "Deployment", "node": "node-1"}, enrich(e, series("shop", "web-5d8f-abcde")))
	cfg.LabelNames.Zone = "az"
	e, _, _ = startEnricherWith(t, cfg, cluster()...)
	require.Equal(t, "eu-west-1a", enrich(e, series("shop", "web-5d8f-abcde"))["az"])
}

func TestEnricherFollowsPodChurnAndOwnerDeletion(t *testing.T) {
	e, client, _ := startEnricher(t, cluster()...)
	ctx := context.Background()

	// Pod replaced by a rollout: the old one goes, a new ReplicaSet's pod comes.
	require.NoError(t, client.CoreV1().Pods("shop").Delete(ctx, "web-5d8f-abcde", metav1.DeleteOptions{}))
	_, err := client.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: meta("shop", "web-6c9a", owner("Deployment", "web"))}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Pods("shop").Create(ctx, pod("shop", "web-6c9a-fghij", "node-3", owner("ReplicaSet", "web-6c9a")), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return len(enrich(e, series("shop", "web-5d8f-abcde"))) == 0 &&
			enrich(e, series("shop", "web-6c9a-fghij"))["workload"] == "web"
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "node-3", enrich(e, series("shop", "web-6c9a-fghij"))["node"])

	// Rescheduled StatefulSet pod: same name, new node.
	require.NoError(t, client.CoreV1().Pods("shop").Delete(ctx, "db-0", metav1.DeleteOptions{}))
	_, err = client.CoreV1().Pods("shop").Create(ctx, pod("shop", "db-0", "node-9", owner("StatefulSet", "db")), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return enrich(e, series("shop", "db-0"))["node"] == "node-9" }, 10*time.Second, 5*time.Millisecond)

	// Deployment deleted (orphaning its ReplicaSet): the ReplicaSet is reported.
	require.NoError(t, client.AppsV1().Deployments("shop").Delete(ctx, "web", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		got := enrich(e, series("shop", "web-6c9a-fghij"))
		return got["workload"] == "web-6c9a" && got["workload_kind"] == "ReplicaSet"
	}, 10*time.Second, 5*time.Millisecond)
	require.Positive(t, testutil.ToFloat64(e.metrics.lookups.WithLabelValues("pod_not_found")))
}

type staticResolver map[string]Workload

func (s staticResolver) Workload(lbls detector.Labels) (Workload, bool) {
	w, ok := s[lbls.Get("pod")]
	return w, ok
}

func TestIncidentsGroupAnomaliesOfOneWorkload(t *testing.T) {
	res := staticResolver{
		"web-a": {Namespace: "shop", Kind: "Deployment", Name: "web"},
		"web-b": {Namespace: "shop", Kind: "Deployment", Name: "web"},
		"db-0":  {Namespace: "shop", Kind: "StatefulSet", Name: "db"},
	}
	in := NewIncidents(2*time.Minute, res)
	ev := func(kind detector.EventKind, id uint64, pod string, openedAt time.Duration) *detector.Event {
		return &detector.Event{Kind: kind, ID: id, Labels: detector.FromStrings("__name__", "x", "pod", pod), OpenedAtMs: openedAt.Milliseconds()}
	}
	a := in.Incident(ev(detector.EventOpen, 1, "web-a", 0))
	require.Len(t, a, 16)
	require.Equal(t, a, in.Incident(ev(detector.EventOpen, 1, "web-a", 0)), "idempotent: every output gets the same ID")
	require.Equal(t, a, in.Incident(ev(detector.EventOpen, 2, "web-b", 90*time.Second)), "same workload within the window")
	db := in.Incident(ev(detector.EventOpen, 3, "db-0", 10*time.Second))
	require.NotEqual(t, a, db, "another workload")
	later := in.Incident(ev(detector.EventOpen, 4, "web-a", 3*time.Minute))
	require.NotEqual(t, a, later, "outside the window: a new incident")
	require.Equal(t, a, in.Incident(ev(detector.EventClose, 2, "web-b", 90*time.Second)), "close keeps the open's incident")
	require.Empty(t, in.Incident(ev(detector.EventOpen, 5, "unknown", 0)))

	// IDs are deterministic across replicas.
	require.Equal(t, a, NewIncidents(2*time.Minute, res).Incident(ev(detector.EventOpen, 99, "web-a", 0)))

	// Closed anomalies and stale incidents are forgotten.
	now := time.Now()
	in.now = func() time.Time { return now.Add(10 * time.Minute) }
	for _, id := range []uint64{1, 3, 4} {
		in.Incident(ev(detector.EventClose, id, "", 0))
	}
	in.now = func() time.Time { return now.Add(time.Hour) }
	in.mu.Lock()
	in.gc(in.now())
	in.mu.Unlock()
	anomalies, incidents := in.Len()
	require.Zero(t, anomalies)
	require.Zero(t, incidents)
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	c.Enabled = true
	require.NoError(t, c.Validate())
	c.LabelNames.Zone = ""
	require.NoError(t, c.Validate(), "an empty zone label name disables it")
	c.PodLabel = "a-b"
	c.LabelNames.Node = ""
	c.LabelNames.Zone = "z-1"
	err := c.Validate()
	require.ErrorContains(t, err, "kubernetes.pod_label")
	require.ErrorContains(t, err, "kubernetes.label_names.node")
	require.ErrorContains(t, err, "kubernetes.label_names.zone")
}

func TestEnricherLabelsAreSortedIntoOutputs(t *testing.T) {
	e, _, _ := startEnricher(t, cluster()...)
	out := exporter.OutputLabels(nil, exporter.DefaultLabelNames, "", "v1", series("shop", "db-0"), e)
	var names []string
	for _, l := range out {
		names = append(names, l.Name)
	}
	require.True(t, sort.StringsAreSorted(names))
	require.Equal(t, []string{"metric", "model", "namespace", "node", "pod", "workload", "workload_kind"}, names)
}
