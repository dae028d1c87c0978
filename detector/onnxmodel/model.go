// Package onnxmodel runs Sentinel Mesh forecasting models (docs/model.md)
// with ONNX Runtime through github.com/yalue/onnxruntime_go.
//
// A model directory holds model.json (metadata, validated first) and
// model.onnx. Load reads one from disk, LoadFS from any fs.FS such as the
// embedded default in package models (see LoadDefault). A sentinel-mesh/v1
// model loads as a *Model (detector.Model), a sentinel-mesh/v2 model as a
// *DistModel, which also implements detector.DistributionModel.
package onnxmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/models"
)

// Options configure a Model.
type Options struct {
	// LibraryPath is passed to InitRuntime (empty: the default search).
	LibraryPath string
	// IntraOpThreads is the size of ONNX Runtime's intra-op thread pool;
	// 0 keeps ONNX Runtime's default (one thread per physical core).
	IntraOpThreads int
	// DisableSpinning stops idle intra-op threads from busy-waiting for work
	// ("session.intra_op.allow_spinning" = "0"). It saves CPU between calls
	// and on shared machines at some cost in latency.
	DisableSpinning bool
}

// maxCachedBatches bounds how many batch sizes keep their tensors between
// calls (a detector typically alternates between a full batch and a remainder).
const maxCachedBatches = 4

// MaxBatch bounds the batch size Predict accepts (256 MiB of input at W=4096).
const MaxBatch = 1 << 24

var (
	_ Loaded                     = (*Model)(nil)
	_ Loaded                     = (*DistModel)(nil)
	_ detector.DistributionModel = (*DistModel)(nil)
)

// Loaded is what Load, LoadFS and LoadDefault return: a *Model for a
// sentinel-mesh/v1 model.json, a *DistModel for sentinel-mesh/v2. Callers that
// can use the predicted scale check for detector.DistributionModel.
type Loaded interface {
	detector.Model
	detector.NormalisationProvider
	Metadata() Metadata
	base() *Model
}

// ErrClosed is returned by Predict after Close.
var ErrClosed = errors.New("onnxmodel: model is closed")

// tensors are the input/output tensors of one batch size. Their memory is owned
// by the Model and reused while that batch size repeats.
type tensors struct {
	batch int
	in    *ort.Tensor[float32]
	out   *ort.Tensor[float32]
	scale *ort.Tensor[float32] // v2 models only
	outs  []ort.Value          // out (and scale), in the session's output order
}

func (t *tensors) destroy() error {
	err := errors.Join(t.in.Destroy(), t.out.Destroy())
	if t.scale != nil {
		err = errors.Join(err, t.scale.Destroy())
	}
	return err
}

// Model is a loaded ONNX model; it implements detector.Model and
// detector.NormalisationProvider. A sentinel-mesh/v2 model is a *DistModel,
// which embeds a *Model.
//
// Predict calls are serialised by a mutex: the model may be shared between
// goroutines, but only one Predict runs at a time (use several Models for
// parallel inference; each already uses Options.IntraOpThreads threads).
type Model struct {
	meta Metadata

	mu      sync.Mutex
	session *ort.DynamicAdvancedSession
	cache   []*tensors // most recently used first
	closed  bool
}

// DistModel is a loaded sentinel-mesh/v2 model: besides the mean (Predict) it
// predicts the scale of the next normalised value (PredictDistribution), so it
// implements detector.DistributionModel.
type DistModel struct {
	*Model
}

// Load reads the model in directory dir.
func Load(dir string, opts Options) (Loaded, error) {
	m, err := LoadFS(os.DirFS(dir), ".", opts)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %s: %w", dir, err)
	}
	return m, nil
}

// LoadDefault loads the default model embedded in package models.
func LoadDefault(opts Options) (Loaded, error) {
	m, err := LoadFS(models.Default, models.DefaultDir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot load the embedded default model: %w", err)
	}
	return m, nil
}

// LoadFS reads the model in directory dir of fsys.
func LoadFS(fsys fs.FS, dir string, opts Options) (Loaded, error) {
	if opts.IntraOpThreads < 0 {
		return nil, fmt.Errorf("cannot load model: IntraOpThreads must be >= 0, got %d", opts.IntraOpThreads)
	}
	metaBytes, err := fs.ReadFile(fsys, path.Join(dir, "model.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot read model.json: %w", err)
	}
	meta, err := ParseMetadata(metaBytes)
	if err != nil {
		return nil, err
	}
	onnxBytes, err := fs.ReadFile(fsys, path.Join(dir, "model.onnx"))
	if err != nil {
		return nil, fmt.Errorf("cannot read model.onnx: %w", err)
	}
	if len(onnxBytes) == 0 {
		return nil, errors.New("cannot load model.onnx: the file is empty")
	}
	if err := InitRuntime(opts.LibraryPath); err != nil {
		return nil, err
	}
	if err := checkGraph(onnxBytes, meta); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("cannot create session options: %w", err)
	}
	defer so.Destroy()
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("cannot set intra-op threads: %w", err)
		}
	}
	if opts.DisableSpinning {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("cannot disable thread spinning: %w", err)
		}
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("cannot set inter-op threads: %w", err)
	}
	outputs := []string{meta.Output}
	if meta.Distribution() {
		outputs = append(outputs, meta.ScaleOutput)
	}
	session, err := ort.NewDynamicAdvancedSessionWithONNXData(onnxBytes, []string{meta.Input}, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("cannot create ONNX Runtime session: %w", err)
	}
	m := &Model{meta: *meta, session: session}
	if meta.Distribution() {
		return &DistModel{Model: m}, nil
	}
	return m, nil
}

// checkGraph verifies that the network's input and output match model.json:
// input [batch, W, 1] float32 and output [batch, 1] float32.
func checkGraph(onnxBytes []byte, meta *Metadata) error {
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(onnxBytes)
	if err != nil {
		return fmt.Errorf("cannot load model.onnx: %w", err)
	}
	if meta.Distribution() {
		return checkGraphV2(ins, outs, meta)
	}
	if len(ins) != 1 || len(outs) != 1 {
		return fmt.Errorf("model.onnx: want exactly one input and one output, got %d and %d", len(ins), len(outs))
	}
	in, out := ins[0], outs[0]
	if in.Name != meta.Input {
		return fmt.Errorf("model.onnx: input is named %q but model.json field \"input\" says %q", in.Name, meta.Input)
	}
	if out.Name != meta.Output {
		return fmt.Errorf("model.onnx: output is named %q but model.json field \"output\" says %q", out.Name, meta.Output)
	}
	if in.DataType != ort.TensorElementDataTypeFloat || out.DataType != ort.TensorElementDataTypeFloat {
		return fmt.Errorf("model.onnx: input and output must be float32, got %v and %v", in.DataType, out.DataType)
	}
	if d := in.Dimensions; len(d) != 3 || d[0] > 0 || d[1] != int64(meta.Window) || d[2] != 1 {
		return fmt.Errorf("model.onnx: input %q must have shape [batch, %d, 1] with a dynamic batch, got %v (model.json field \"window\" is %d)", in.Name, meta.Window, d, meta.Window)
	}
	if d := out.Dimensions; len(d) != 2 || d[0] > 0 || d[1] != 1 {
		return fmt.Errorf("model.onnx: output %q must have shape [batch, 1] with a dynamic batch, got %v", out.Name, d)
	}
	return nil
}

// checkGraphV2 verifies a sentinel-mesh/v2 network: the input as for v1 and
// exactly two outputs, named by model.json's "output" and "scale_output", each
// float32 [batch, 1]. Output problems are FieldErrors naming the JSON field.
func checkGraphV2(ins, outs []ort.InputOutputInfo, meta *Metadata) error {
	if len(ins) != 1 {
		return fmt.Errorf("model.onnx: want exactly one input, got %d", len(ins))
	}
	in := ins[0]
	if in.Name != meta.Input {
		return fmt.Errorf("model.onnx: input is named %q but model.json field \"input\" says %q", in.Name, meta.Input)
	}
	if in.DataType != ort.TensorElementDataTypeFloat {
		return fmt.Errorf("model.onnx: input must be float32, got %v", in.DataType)
	}
	if d := in.Dimensions; len(d) != 3 || d[0] > 0 || d[1] != int64(meta.Window) || d[2] != 1 {
		return fmt.Errorf("model.onnx: input %q must have shape [batch, %d, 1] with a dynamic batch, got %v (model.json field \"window\" is %d)", in.Name, meta.Window, d, meta.Window)
	}
	names := make([]string, len(outs))
	for i, o := range outs {
		names[i] = o.Name
	}
	if len(outs) != 2 {
		return &FieldError{Field: "format", Reason: fmt.Sprintf("is %q, which needs exactly two outputs (\"output\" and \"scale_output\"), but model.onnx has %d: %q", FormatV2, len(outs), names)}
	}
	for _, want := range []struct{ field, name string }{{"output", meta.Output}, {"scale_output", meta.ScaleOutput}} {
		i := slices.Index(names, want.name)
		if i < 0 {
			return &FieldError{Field: want.field, Reason: fmt.Sprintf("is %q, but model.onnx has no such output (outputs: %q)", want.name, names)}
		}
		o := outs[i]
		if o.DataType != ort.TensorElementDataTypeFloat {
			return &FieldError{Field: want.field, Reason: fmt.Sprintf("names output %q, which is %v in model.onnx; want float32", o.Name, o.DataType)}
		}
		if d := o.Dimensions; len(d) != 2 || d[0] > 0 || d[1] != 1 {
			return &FieldError{Field: want.field, Reason: fmt.Sprintf("names output %q, which has shape %v in model.onnx; want [batch, 1] with a dynamic batch", o.Name, d)}
		}
	}
	return nil
}

func (m *Model) base() *Model { return m }

// Metadata returns the parsed model.json.
func (m *Model) Metadata() Metadata { return m.meta }

// Window returns the number of values per window.
func (m *Model) Window() int { return m.meta.Window }

// Version returns model.json's version (the "model" label of the outputs).
func (m *Model) Version() string { return m.meta.Version }

// Normalisation returns the normalisation parameters from model.json in the
// detector's type.
func (m *Model) Normalisation() detector.Normalisation { return m.meta.Normalisation.Detector() }

// Predict runs batch windows through the network. in holds batch*Window()
// normalised values ([batch, W, 1] row-major) and out receives batch
// normalised predictions; longer slices are allowed, only the prefix is used.
//
// Buffer ownership: Predict copies in into an input tensor owned by the
// Model and copies the results into out before it returns, so the caller keeps
// ownership of both slices and may reuse them at once. The Model's tensors are
// reused while the batch size repeats (the last few batch sizes are cached), so
// steady-state calls allocate nothing in Go.
//
// Predict is safe to call from several goroutines, but calls are serialised.
func (m *Model) Predict(in []float32, batch int, out []float32) error {
	return m.run(in, batch, out, nil)
}

// PredictDistribution runs batch windows through the network like Predict and
// writes, per window, the predicted mean into mean and the predicted scale
// (standard deviation, > 0, normalised units) into scale. Buffer ownership and
// serialisation are as for Predict; Predict on a DistModel computes both
// outputs and returns the mean.
func (d *DistModel) PredictDistribution(in []float32, batch int, mean, scale []float32) error {
	if len(scale) < batch {
		return fmt.Errorf("cannot predict: scale has room for %d values, want %d", len(scale), batch)
	}
	return d.run(in, batch, mean, scale)
}

// run is Predict, and PredictDistribution when scale is not nil.
func (m *Model) run(in []float32, batch int, out, scale []float32) error {
	if batch < 1 || batch > MaxBatch {
		return fmt.Errorf("cannot predict: batch must be between 1 and %d, got %d", MaxBatch, batch)
	}
	n := batch * m.meta.Window
	if len(in) < n {
		return fmt.Errorf("cannot predict: input has %d values, want %d (batch %d x window %d)", len(in), n, batch, m.meta.Window)
	}
	if len(out) < batch {
		return fmt.Errorf("cannot predict: output has room for %d predictions, want %d", len(out), batch)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	t, err := m.tensorsFor(batch)
	if err != nil {
		return err
	}
	copy(t.in.GetData(), in[:n])
	if err := m.session.Run([]ort.Value{t.in}, t.outs); err != nil {
		return fmt.Errorf("cannot run model %s: %w", m.meta.Version, err)
	}
	copy(out[:batch], t.out.GetData())
	if scale != nil {
		copy(scale[:batch], t.scale.GetData())
	}
	return nil
}

// tensorsFor returns the cached tensors for batch, creating them if needed.
// m.mu must be held.
func (m *Model) tensorsFor(batch int) (*tensors, error) {
	for i, t := range m.cache {
		if t.batch == batch {
			if i > 0 { // move to front
				copy(m.cache[1:i+1], m.cache[:i])
				m.cache[0] = t
			}
			return t, nil
		}
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(m.meta.Window), 1))
	if err != nil {
		return nil, fmt.Errorf("cannot allocate the input tensor for batch %d: %w", batch, err)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), 1))
	if err != nil {
		_ = in.Destroy()
		return nil, fmt.Errorf("cannot allocate the output tensor for batch %d: %w", batch, err)
	}
	t := &tensors{batch: batch, in: in, out: out, outs: []ort.Value{out}}
	if m.meta.Distribution() {
		t.scale, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), 1))
		if err != nil {
			_ = t.destroy()
			return nil, fmt.Errorf("cannot allocate the scale tensor for batch %d: %w", batch, err)
		}
		t.outs = append(t.outs, t.scale)
	}
	if len(m.cache) == maxCachedBatches {
		last := m.cache[len(m.cache)-1]
		m.cache = m.cache[:len(m.cache)-1]
		if err := last.destroy(); err != nil {
			_ = t.destroy()
			return nil, fmt.Errorf("cannot release the tensors for batch %d: %w", last.batch, err)
		}
	}
	m.cache = slices.Insert(m.cache, 0, t)
	return t, nil
}

// Close releases the session and tensors. It is safe to call more than once.
// The process-wide ONNX Runtime environment stays initialised.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	for _, t := range m.cache {
		errs = append(errs, t.destroy())
	}
	m.cache = nil
	if err := m.session.Destroy(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot close model %s: %w", m.meta.Version, err)
	}
	return nil
}
