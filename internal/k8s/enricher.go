package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Workload is what a pod belongs to.
type Workload struct {
	Namespace string
	Kind      string // Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet, Pod, or another controller kind
	Name      string
	Node      string // the pod's node; "" while unscheduled
	Zone      string // the node's topology.kubernetes.io/zone label; "" when unknown
}

// ZoneLabel is the node label the zone comes from.
const ZoneLabel = "topology.kubernetes.io/zone"

// NewClient returns a clientset from cfg.Kubeconfig, the in-cluster service
// account, or $KUBECONFIG, in that order.
func NewClient(cfg Config) (kubernetes.Interface, error) {
	var (
		rc  *rest.Config
		err error
	)
	switch {
	case cfg.Kubeconfig != "":
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		rc, err = rest.InClusterConfig()
	default:
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load Kubernetes client configuration: %w", err)
	}
	rc.UserAgent = "sentinel-mesh"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cannot create Kubernetes client: %w", err)
	}
	return cs, nil
}

type metrics struct {
	synced      prometheus.Gauge
	lookups     *prometheus.CounterVec
	found, miss prometheus.Counter
}

// Enricher maps series to workloads from informer caches. It implements
// exporter.LabelEnricher.
type Enricher struct {
	cfg     Config
	logger  *slog.Logger
	metrics metrics
	factory informers.SharedInformerFactory
	synced  []cache.InformerSynced

	pods         corelisters.PodLister
	replicaSets  appslisters.ReplicaSetLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	daemonSets   appslisters.DaemonSetLister
	jobs         batchlisters.JobLister
	nodes        corelisters.NodeLister // nil when the zone label is disabled
}

// NewEnricher sets up informers on pods, replicasets, deployments,
// statefulsets, daemonsets, jobs and (unless label_names.zone is empty)
// nodes; Run starts them. The controllers' informers verify that an owner
// named by a reference still exists; the nodes' give the zone. CronJobs are
// not watched: a Job's controller reference names its CronJob.
func NewEnricher(cfg Config, client kubernetes.Interface, logger *slog.Logger, reg prometheus.Registerer) (*Enricher, error) {
	e := &Enricher{cfg: cfg, logger: logger}
	e.metrics = metrics{
		synced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sentinel_mesh_kubernetes_cache_synced",
			Help: "1 once the Kubernetes informer caches have synced.",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentinel_mesh_kubernetes_lookups_total",
			Help: "Workload lookups of series with pod and namespace labels, by result (found, pod_not_found).",
		}, []string{"result"}),
	}
	e.metrics.found = e.metrics.lookups.WithLabelValues("found")
	e.metrics.miss = e.metrics.lookups.WithLabelValues("pod_not_found")
	if reg != nil {
		if err := errors.Join(reg.Register(e.metrics.synced), reg.Register(e.metrics.lookups)); err != nil {
			return nil, fmt.Errorf("cannot register Kubernetes metrics: %w", err)
		}
	}
	e.factory = informers.NewSharedInformerFactory(client, time.Duration(cfg.ResyncPeriod))
	pods := e.factory.Core().V1().Pods()
	rs := e.factory.Apps().V1().ReplicaSets()
	deps := e.factory.Apps().V1().Deployments()
	sts := e.factory.Apps().V1().StatefulSets()
	dss := e.factory.Apps().V1().DaemonSets()
	jobs := e.factory.Batch().V1().Jobs()
	infs := []cache.SharedIndexInformer{pods.Informer(), rs.Informer(), deps.Informer(), sts.Informer(), dss.Informer(), jobs.Informer()}
	if cfg.LabelNames.Zone != "" {
		nodes := e.factory.Core().V1().Nodes()
		infs = append(infs, nodes.Informer())
		e.nodes = nodes.Lister()
	}
	// Only names, owners, node names and zones are kept: a pod cache is
	// otherwise the largest memory cost of the enrichment.
	for _, inf := range infs {
		if err := inf.SetTransform(strip); err != nil {
			return nil, fmt.Errorf("cannot set informer transform: %w", err)
		}
		e.synced = append(e.synced, inf.HasSynced)
	}
	e.pods, e.replicaSets, e.deployments, e.jobs = pods.Lister(), rs.Lister(), deps.Lister(), jobs.Lister()
	e.statefulSets, e.daemonSets = sts.Lister(), dss.Lister()
	return e, nil
}

func stripMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: m.OwnerReferences,
	}
}

func strip(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &corev1.Pod{ObjectMeta: stripMeta(o.ObjectMeta), Spec: corev1.PodSpec{NodeName: o.Spec.NodeName}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: stripMeta(o.ObjectMeta)}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: stripMeta(o.ObjectMeta)}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: stripMeta(o.ObjectMeta)}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{ObjectMeta: stripMeta(o.ObjectMeta)}, nil
	case *batchv1.Job:
		return &batchv1.Job{ObjectMeta: stripMeta(o.ObjectMeta)}, nil
	case *corev1.Node:
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion}}
		if z, ok := o.Labels[ZoneLabel]; ok {
			n.Labels = map[string]string{ZoneLabel: z}
		}
		return n, nil
	}
	return obj, nil
}

// Run starts the informers and waits for ctx; it returns once they stopped.
func (e *Enricher) Run(ctx context.Context) error {
	e.factory.Start(ctx.Done())
	defer e.factory.Shutdown()
	start := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), e.synced...) {
		return nil // ctx done before the caches synced
	}
	e.metrics.synced.Set(1)
	e.logger.Info("Kubernetes caches synced", "duration", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	return nil
}

// HasSynced reports whether every informer cache has synced.
func (e *Enricher) HasSynced() bool {
	for _, s := range e.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Workload resolves the pod named by the series' pod and namespace labels
// to its workload by walking controller owner references while the owners
// are in the cache: Pod → ReplicaSet → Deployment, Pod → Job → CronJob,
// Pod → StatefulSet / DaemonSet / other controller. When an owner has been
// deleted the walk stops at the last object that still exists (a
// ReplicaSet whose Deployment is gone maps to the ReplicaSet; a pod whose
// StatefulSet or DaemonSet is gone maps to the pod), except that a pod
// whose ReplicaSet is gone maps to the ReplicaSet named in its owner
// reference (ReplicaSets come and go with rollouts; the name still groups
// the pods of one revision). The zone is the node's zone label when the
// node is in the cache.
func (e *Enricher) Workload(lbls detector.Labels) (Workload, bool) {
	ns, name := lbls.Get(e.cfg.NamespaceLabel), lbls.Get(e.cfg.PodLabel)
	if ns == "" || name == "" {
		return Workload{}, false
	}
	pod, err := e.pods.Pods(ns).Get(name)
	if err != nil {
		e.metrics.miss.Inc()
		return Workload{}, false
	}
	e.metrics.found.Inc()
	w := Workload{Namespace: ns, Kind: "Pod", Name: pod.Name, Node: pod.Spec.NodeName}
	if e.nodes != nil && w.Node != "" {
		if node, err := e.nodes.Get(w.Node); err == nil {
			w.Zone = node.Labels[ZoneLabel]
		}
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return w, true
	}
	w.Kind, w.Name = ref.Kind, ref.Name
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := e.replicaSets.ReplicaSets(ns).Get(ref.Name)
		if err != nil {
			return w, true
		}
		if up := metav1.GetControllerOf(rs); up != nil && up.Kind == "Deployment" {
			if _, err := e.deployments.Deployments(ns).Get(up.Name); err == nil {
				w.Kind, w.Name = up.Kind, up.Name
			}
		}
	case "StatefulSet":
		if _, err := e.statefulSets.StatefulSets(ns).Get(ref.Name); err != nil {
			w.Kind, w.Name = "Pod", pod.Name
		}
	case "DaemonSet":
		if _, err := e.daemonSets.DaemonSets(ns).Get(ref.Name); err != nil {
			w.Kind, w.Name = "Pod", pod.Name
		}
	case "Job":
		job, err := e.jobs.Jobs(ns).Get(ref.Name)
		if err != nil {
			return w, true
		}
		// CronJobs are not watched: the Job's owner reference names it.
		if up := metav1.GetControllerOf(job); up != nil && up.Kind == "CronJob" {
			w.Kind, w.Name = up.Kind, up.Name
		}
	}
	return w, true
}

// Enrich adds the workload, workload kind, node and zone labels of the
// series' pod.
func (e *Enricher) Enrich(_ string, lbls detector.Labels, add func(name, value string)) {
	w, ok := e.Workload(lbls)
	if !ok {
		return
	}
	add(e.cfg.LabelNames.Workload, w.Name)
	add(e.cfg.LabelNames.WorkloadKind, w.Kind)
	if w.Node != "" {
		add(e.cfg.LabelNames.Node, w.Node)
	}
	if w.Zone != "" && e.cfg.LabelNames.Zone != "" {
		add(e.cfg.LabelNames.Zone, w.Zone)
	}
}
