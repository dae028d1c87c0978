package onnxmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// Format is the model.json format of a mean-only model: one output, the
// predicted next value.
const Format = "sentinel-mesh/v1"

// FormatV2 is the model.json format of a distribution model: a second output,
// named by "scale_output", predicts the standard deviation of a Gaussian for the
// next value (docs/model.md). Such a model loads as a *DistModel.
const FormatV2 = "sentinel-mesh/v2"

// NormalisationKind is the only normalisation this package knows.
const NormalisationKind = "zscore-window"

// MaxWindow bounds the window length accepted from model.json.
const MaxWindow = 4096

// Normalisation holds the "normalisation" object of model.json (see
// docs/model.md). The detector must normalise windows with exactly these
// parameters, which is what Model.Normalisation returns.
type Normalisation struct {
	Kind        string  `json:"kind"`
	MinScaleRel float64 `json:"min_scale_rel"`
	MinScaleAbs float64 `json:"min_scale_abs"`
	Clip        float64 `json:"clip"`
}

// Detector converts the parameters to the detector's type.
func (n Normalisation) Detector() detector.Normalisation {
	return detector.Normalisation{MinScaleRel: n.MinScaleRel, MinScaleAbs: n.MinScaleAbs, Clip: n.Clip}
}

// TimeRange is the span of the training data (RFC 3339 strings).
type TimeRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Training summarises how the model was trained. It is informational: no field
// is required.
type Training struct {
	Source            string    `json:"source"`
	Seed              int64     `json:"seed"`
	Series            int       `json:"series"`
	Windows           int       `json:"windows"`
	ValidationWindows int       `json:"validation_windows,omitempty"`
	Epochs            int       `json:"epochs"`
	BatchSize         int       `json:"batch_size,omitempty"`
	LearningRate      float64   `json:"learning_rate,omitempty"`
	Loss              *float64  `json:"loss,omitempty"`
	ValidationLoss    *float64  `json:"validation_loss"`
	Range             TimeRange `json:"range"`
	Framework         string    `json:"framework,omitempty"`
	Parameters        int       `json:"parameters,omitempty"`

	// Written by the Python trainer (sentinel-mesh/v2 models).
	Data                  []string `json:"data,omitempty"`  // corpus folder names
	Fold                  string   `json:"fold,omitempty"`  // A, B or all
	Files                 []string `json:"files,omitempty"` // "<corpus>/<category>/<file>.csv"
	ValidationNLL         *float64 `json:"validation_nll,omitempty"`
	ValidationBaselineNLL *float64 `json:"validation_baseline_nll,omitempty"`
}

// Metadata is the content of model.json.
type Metadata struct {
	Format        string        `json:"format"`
	Version       string        `json:"version"`
	Window        int           `json:"window"`
	Input         string        `json:"input"`
	Output        string        `json:"output"`
	ScaleOutput   string        `json:"scale_output,omitempty"` // sentinel-mesh/v2 only
	Normalisation Normalisation `json:"normalisation"`
	Architecture  string        `json:"architecture"`
	Opset         int           `json:"opset"`
	Training      Training      `json:"training"`
}

// FieldError reports an invalid or missing model.json field.
type FieldError struct {
	Field  string // JSON path, e.g. "normalisation.clip"
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("model.json: field %q %s", e.Field, e.Reason)
}

// ParseMetadata decodes and validates model.json. Unknown fields are ignored so
// that newer trainers can add information.
func ParseMetadata(data []byte) (*Metadata, error) {
	var m Metadata
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("cannot parse model.json: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("cannot parse model.json: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the fields the runtime depends on.
func (m *Metadata) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case m.Format != Format && m.Format != FormatV2:
		return bad("format", "must be %q or %q, got %q", Format, FormatV2, m.Format)
	case m.Version == "":
		return bad("version", "is required")
	case len(m.Version) > 128:
		return bad("version", "is longer than 128 bytes")
	case m.Window < 2 || m.Window > MaxWindow:
		return bad("window", "must be between 2 and %d, got %d", MaxWindow, m.Window)
	case m.Input == "":
		return bad("input", "is required")
	case m.Output == "":
		return bad("output", "is required")
	case m.Input == m.Output:
		return bad("output", "must differ from input (%q)", m.Input)
	case m.Opset < 1:
		return bad("opset", "must be a positive ONNX opset version, got %d", m.Opset)
	}
	if m.Distribution() {
		switch {
		case m.ScaleOutput == "":
			return bad("scale_output", "is required by format %q", FormatV2)
		case m.ScaleOutput == m.Input || m.ScaleOutput == m.Output:
			return bad("scale_output", "must differ from input and output (%q)", m.ScaleOutput)
		}
	}
	n := m.Normalisation
	switch {
	case n.Kind != NormalisationKind:
		return bad("normalisation.kind", "must be %q, got %q", NormalisationKind, n.Kind)
	case !finite(n.MinScaleRel) || n.MinScaleRel < 0:
		return bad("normalisation.min_scale_rel", "must be a finite number >= 0, got %v", n.MinScaleRel)
	case !finite(n.MinScaleAbs) || n.MinScaleAbs <= 0:
		return bad("normalisation.min_scale_abs", "must be a finite number > 0, got %v", n.MinScaleAbs)
	case !finite(n.Clip) || n.Clip <= 0:
		return bad("normalisation.clip", "must be a finite number > 0, got %v", n.Clip)
	}
	return nil
}

// Distribution reports whether the model predicts a scale as well as a mean
// (format sentinel-mesh/v2). A v1 model.json's "scale_output", if any, is
// ignored.
func (m *Metadata) Distribution() bool { return m.Format == FormatV2 }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
