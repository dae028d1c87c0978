// Package k8s maps series that carry pod and namespace labels to their
// Kubernetes workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, ...)
// and node, from client-go shared informers, and groups the anomalies of one
// workload into incidents.
package k8s

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
)

// Config is the `kubernetes:` section.
type Config struct {
	// Enabled turns the enrichment on.
	Enabled bool `yaml:"enabled"`
	// Kubeconfig is a kubeconfig file; empty uses the in-cluster service
	// account (or $KUBECONFIG when not running in a cluster).
	Kubeconfig string `yaml:"kubeconfig"`
	// ResyncPeriod is the informers' resync period.
	ResyncPeriod model.Duration `yaml:"resync_period"`
	// PodLabel and NamespaceLabel are the series labels that name a pod.
	PodLabel       string `yaml:"pod_label"`
	NamespaceLabel string `yaml:"namespace_label"`
	// LabelNames are the output labels the enrichment adds.
	LabelNames LabelNames `yaml:"label_names"`
	// IncidentWindow groups the anomalies of one workload that open within
	// this long of the first one into one incident; 0 disables incidents.
	IncidentWindow model.Duration `yaml:"incident_window"`
}

// LabelNames are the names of the labels added to outputs.
type LabelNames struct {
	Workload     string `yaml:"workload"`
	WorkloadKind string `yaml:"workload_kind"`
	Node         string `yaml:"node"`
	// Zone carries the topology.kubernetes.io/zone label of the pod's node;
	// empty disables it (and the node informer).
	Zone string `yaml:"zone"`
}

// DefaultConfig returns the kubernetes section used for omitted keys.
func DefaultConfig() Config {
	return Config{
		ResyncPeriod:   model.Duration(10 * time.Minute),
		PodLabel:       "pod",
		NamespaceLabel: "namespace",
		LabelNames:     LabelNames{Workload: "workload", WorkloadKind: "workload_kind", Node: "node", Zone: "zone"},
		IncidentWindow: model.Duration(2 * time.Minute),
	}
}

// UnmarshalYAML starts from the defaults so omitted keys keep them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return fmt.Errorf("cannot parse kubernetes: %w", err)
	}
	return nil
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate reports every invalid field, naming its YAML key.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if c.ResyncPeriod < 0 {
		errs = append(errs, errors.New("kubernetes.resync_period must be >= 0"))
	}
	if c.IncidentWindow < 0 {
		errs = append(errs, errors.New("kubernetes.incident_window must be >= 0"))
	}
	for key, v := range map[string]string{
		"pod_label": c.PodLabel, "namespace_label": c.NamespaceLabel,
		"label_names.workload": c.LabelNames.Workload, "label_names.workload_kind": c.LabelNames.WorkloadKind,
		"label_names.node": c.LabelNames.Node,
	} {
		if !labelName.MatchString(v) {
			errs = append(errs, fmt.Errorf("kubernetes.%s: invalid label name %q", key, v))
		}
	}
	if c.LabelNames.Zone != "" && !labelName.MatchString(c.LabelNames.Zone) {
		errs = append(errs, fmt.Errorf("kubernetes.label_names.zone: invalid label name %q", c.LabelNames.Zone))
	}
	return errors.Join(errs...)
}
