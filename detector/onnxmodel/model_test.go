package onnxmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
	"github.com/sentinel-mesh/sentinel-mesh/models"
)

// v2Dir holds a small sentinel-mesh/v2 model trained by
// detector/training/py/train.py (1 epoch, 4,000 windows of nab-dev fold A).
const v2Dir = "testdata/v2"

// ModelDirEnv selects the model directory for the parity test (default: the
// embedded models/default). CI points it at a freshly trained model.
const ModelDirEnv = "SENTINEL_MODEL_DIR"

type parityFixture struct {
	Window      int         `json:"window"`
	Count       int         `json:"count"`
	Inputs      [][]float32 `json:"inputs"`
	Predictions []float64   `json:"predictions"`
	Scales      []float64   `json:"scales"` // sentinel-mesh/v2 models
}

// testModel loads the model under test and its parity fixture.
func testModel(t testing.TB) (Loaded, parityFixture) {
	t.Helper()
	return loadWithParity(t, os.Getenv(ModelDirEnv))
}

// loadWithParity loads the model in dir (empty: the embedded default) and its
// parity fixture; the model is closed when the test ends.
func loadWithParity(t testing.TB, dir string) (Loaded, parityFixture) {
	t.Helper()
	var (
		m      Loaded
		err    error
		parity []byte
	)
	if dir != "" {
		m, err = Load(dir, Options{})
		if err == nil {
			parity, err = os.ReadFile(filepath.Join(dir, "parity.json"))
		}
	} else {
		m, err = LoadDefault(Options{})
		if err == nil {
			parity, err = fs.ReadFile(models.Default, models.DefaultDir+"/parity.json")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	var fx parityFixture
	if err := json.Unmarshal(parity, &fx); err != nil {
		t.Fatalf("cannot parse parity.json: %v", err)
	}
	if fx.Window != m.Window() || fx.Count != len(fx.Inputs) || fx.Count != len(fx.Predictions) || fx.Count == 0 {
		t.Fatalf("parity.json is inconsistent: window %d (model %d), count %d, %d inputs, %d predictions",
			fx.Window, m.Window(), fx.Count, len(fx.Inputs), len(fx.Predictions))
	}
	if _, ok := m.(detector.DistributionModel); ok && len(fx.Scales) != fx.Count {
		t.Fatalf("parity.json of a distribution model has %d scales, want %d", len(fx.Scales), fx.Count)
	}
	return m, fx
}

// TestParityWithTFJS checks ONNX Runtime against the training framework's
// predictions (tfjs for v1 models, Keras for v2; both outputs for v2) on the
// model under test ($SENTINEL_MODEL_DIR or the embedded default).
func TestParityWithTFJS(t *testing.T) {
	m, fx := testModel(t)
	checkParity(t, m, fx)
}

// TestParityV2 runs the parity check on the v2 test model.
func TestParityV2(t *testing.T) {
	m, fx := loadWithParity(t, v2Dir)
	if _, ok := m.(detector.DistributionModel); !ok {
		t.Fatalf("%s loaded as %T, not a detector.DistributionModel", v2Dir, m)
	}
	checkParity(t, m, fx)
}

func checkParity(t *testing.T, m Loaded, fx parityFixture) {
	t.Helper()
	W := m.Window()
	in := make([]float32, 0, fx.Count*W)
	for i, w := range fx.Inputs {
		if len(w) != W {
			t.Fatalf("parity window %d has %d values, want %d", i, len(w), W)
		}
		in = append(in, w...)
	}
	const tol = 1e-5
	checkAgainst := func(name string, out []float32, first int, want []float64) {
		t.Helper()
		var maxDiff float64
		for i, p := range out {
			d := math.Abs(float64(p) - want[first+i])
			if math.IsNaN(d) || d > tol {
				t.Errorf("%s: window %d: onnxruntime %v, training framework %v (diff %.3g > %g)", name, first+i, p, want[first+i], d, tol)
			}
			maxDiff = max(maxDiff, d)
		}
		t.Logf("%s: max |onnxruntime - training framework| = %.3g over %d windows", name, maxDiff, len(out))
	}
	check := func(name string, out []float32, first int) {
		t.Helper()
		checkAgainst(name, out, first, fx.Predictions)
	}
	// All windows in one batch.
	out := make([]float32, fx.Count)
	if err := m.Predict(in, fx.Count, out); err != nil {
		t.Fatal(err)
	}
	check("batch", out, 0)
	// One at a time: a batch of 1 must give the same numbers (and exercises
	// the tensor cache switching between batch sizes).
	singles := make([]float32, fx.Count)
	for i := 0; i < fx.Count; i++ {
		if err := m.Predict(in[i*W:(i+1)*W], 1, singles[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	check("batch of 1", singles, 0)
	// Back to the full batch with a reused (cached) tensor.
	clear(out)
	if err := m.Predict(in, fx.Count, out); err != nil {
		t.Fatal(err)
	}
	check("batch again", out, 0)
	dm, ok := m.(detector.DistributionModel)
	if !ok {
		return
	}
	// Both outputs, in one batch and one window at a time.
	mean, scale := make([]float32, fx.Count), make([]float32, fx.Count)
	if err := dm.PredictDistribution(in, fx.Count, mean, scale); err != nil {
		t.Fatal(err)
	}
	check("distribution mean", mean, 0)
	checkAgainst("distribution scale", scale, 0, fx.Scales)
	for i := 0; i < fx.Count; i++ {
		if err := dm.PredictDistribution(in[i*W:(i+1)*W], 1, mean[i:i+1], scale[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	check("distribution mean, batch of 1", mean, 0)
	checkAgainst("distribution scale, batch of 1", scale, 0, fx.Scales)
	for i, s := range scale {
		if !(s > 0) {
			t.Errorf("window %d: scale %v, want > 0", i, s)
		}
	}
}

func TestDefaultModelMetadata(t *testing.T) {
	m, err := LoadDefault(Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	md := m.Metadata()
	if md.Format != Format || md.Input != "window" || md.Output != "prediction" || md.Opset != 17 {
		t.Errorf("unexpected metadata %+v", md)
	}
	if m.Version() == "" || m.Window() != md.Window {
		t.Errorf("Version %q Window %d", m.Version(), m.Window())
	}
	n := m.Normalisation()
	if n.MinScaleRel != 1e-3 || n.MinScaleAbs != 1e-6 || n.Clip != 10 {
		t.Errorf("normalisation %+v, want the docs/model.md defaults", n)
	}
	if md.Training.ValidationLoss == nil || md.Training.Windows == 0 {
		t.Errorf("training summary missing: %+v", md.Training)
	}
}

func TestPredictRejectsBadArguments(t *testing.T) {
	m, _ := testModel(t)
	W := m.Window()
	cases := []struct {
		name    string
		in, out int
		batch   int
		want    string
	}{
		{"zero batch", W, 1, 0, "batch must be"},
		{"negative batch", W, 1, -3, "batch must be"},
		{"short input", 2*W - 1, 2, 2, "input has"},
		{"short output", 2 * W, 1, 2, "output has room"},
	}
	for _, c := range cases {
		err := m.Predict(make([]float32, c.in), c.batch, make([]float32, c.out))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestTensorCacheAndClose(t *testing.T) {
	m, fx := testModel(t)
	W := m.Window()
	in := make([]float32, 0, 8*W)
	for i := 0; i < 8; i++ {
		in = append(in, fx.Inputs[i%fx.Count]...)
	}
	want := make([]float32, 8)
	if err := m.Predict(in, 8, want); err != nil {
		t.Fatal(err)
	}
	// More distinct batch sizes than the cache holds, twice round.
	for round := 0; round < 2; round++ {
		for b := 1; b <= 8; b++ {
			out := make([]float32, b)
			if err := m.Predict(in, b, out); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				if math.Abs(float64(out[i]-want[i])) > 1e-6 {
					t.Fatalf("batch %d window %d: %v, want %v", b, i, out[i], want[i])
				}
			}
		}
	}
	if n := len(m.base().cache); n > maxCachedBatches {
		t.Errorf("cache holds %d batch sizes, limit %d", n, maxCachedBatches)
	}
	// Concurrent use is serialised, not racy.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, 8)
			for i := 0; i < 20; i++ {
				if err := m.Predict(in, 1+i%8, out); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.Predict(in, 1, want); !errors.Is(err, ErrClosed) {
		t.Fatalf("Predict after Close: %v, want ErrClosed", err)
	}
}

// modelFS returns the default model's files with replacements.
func modelFS(t *testing.T, replace map[string][]byte) fstest.MapFS {
	t.Helper()
	return modelFSFrom(t, models.Default, models.DefaultDir, replace)
}

// modelFSFrom returns the model files in dir of src, with replacements, as
// directory "m".
func modelFSFrom(t *testing.T, src fs.FS, dir string, replace map[string][]byte) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, name := range []string{"model.json", "model.onnx"} {
		b, err := fs.ReadFile(src, path.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		fsys["m/"+name] = &fstest.MapFile{Data: b}
	}
	for name, b := range replace {
		if b == nil {
			delete(fsys, "m/"+name)
		} else {
			fsys["m/"+name] = &fstest.MapFile{Data: b}
		}
	}
	return fsys
}

// editJSON returns the default model.json with one field changed (or removed
// when value is nil).
func editJSON(t *testing.T, edit func(map[string]any)) []byte {
	t.Helper()
	return editJSONFrom(t, models.Default, models.DefaultDir, edit)
}

// editJSONFrom is editJSON for the model in dir of src.
func editJSONFrom(t *testing.T, src fs.FS, dir string, edit func(map[string]any)) []byte {
	t.Helper()
	b, err := fs.ReadFile(src, path.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// set returns an edit of model.json that sets key k to v, or deletes it
// when v is nil.
func set(k string, v any) func(map[string]any) {
	return func(m map[string]any) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}

func TestLoadRejectsBadModels(t *testing.T) {
	norm := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["normalisation"].(map[string]any)[k] = v }
	}
	cases := []struct {
		name    string
		replace map[string][]byte
		want    string
	}{
		{"missing model.json", map[string][]byte{"model.json": nil}, "cannot read model.json"},
		{"missing model.onnx", map[string][]byte{"model.onnx": nil}, "cannot read model.onnx"},
		{"json syntax", map[string][]byte{"model.json": []byte(`{"format": `)}, "cannot parse model.json"},
		{"json trailing", map[string][]byte{"model.json": append(editJSON(t, func(map[string]any) {}), []byte(" {}")...)}, "trailing data"},
		{"json wrong type", map[string][]byte{"model.json": editJSON(t, set("window", "32"))}, "cannot parse model.json"},
		{"format", map[string][]byte{"model.json": editJSON(t, set("format", "other/v9"))}, `field "format"`},
		{"no version", map[string][]byte{"model.json": editJSON(t, set("version", nil))}, `field "version"`},
		{"no window", map[string][]byte{"model.json": editJSON(t, set("window", nil))}, `field "window"`},
		{"huge window", map[string][]byte{"model.json": editJSON(t, set("window", 1e6))}, `field "window"`},
		{"no input", map[string][]byte{"model.json": editJSON(t, set("input", ""))}, `field "input"`},
		{"no output", map[string][]byte{"model.json": editJSON(t, set("output", nil))}, `field "output"`},
		{"no opset", map[string][]byte{"model.json": editJSON(t, set("opset", nil))}, `field "opset"`},
		{"norm kind", map[string][]byte{"model.json": editJSON(t, norm("kind", "minmax"))}, `field "normalisation.kind"`},
		{"norm rel", map[string][]byte{"model.json": editJSON(t, norm("min_scale_rel", -1))}, `field "normalisation.min_scale_rel"`},
		{"norm abs", map[string][]byte{"model.json": editJSON(t, norm("min_scale_abs", 0))}, `field "normalisation.min_scale_abs"`},
		{"norm clip", map[string][]byte{"model.json": editJSON(t, norm("clip", nil))}, `field "normalisation.clip"`},
		{"window mismatch", map[string][]byte{"model.json": editJSON(t, set("window", 17))}, `must have shape [batch, 17, 1]`},
		{"input name mismatch", map[string][]byte{"model.json": editJSON(t, set("input", "x"))}, `model.json field "input" says "x"`},
		{"output name mismatch", map[string][]byte{"model.json": editJSON(t, set("output", "y"))}, `model.json field "output" says "y"`},
		{"empty onnx", map[string][]byte{"model.onnx": {}}, "model.onnx: the file is empty"},
		{"garbage onnx", map[string][]byte{"model.onnx": []byte("this is not a protobuf model")}, "cannot load model.onnx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadFS(modelFS(t, c.replace), "m", Options{})
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
	// Truncated network: must fail cleanly, never crash.
	onnx, err := fs.ReadFile(models.Default, models.DefaultDir+"/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := LoadFS(modelFS(t, map[string][]byte{"model.onnx": onnx[:len(onnx)/2]}), "m", Options{}); err == nil {
		m.Close()
		t.Error("a truncated model.onnx was accepted")
	}
	if _, err := LoadFS(modelFS(t, nil), "m", Options{IntraOpThreads: -1}); err == nil {
		t.Error("IntraOpThreads -1 was accepted")
	}
}

func TestV2Model(t *testing.T) {
	m, err := Load(v2Dir, Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	md := m.Metadata()
	if md.Format != FormatV2 || md.ScaleOutput != "scale" || md.Output != "prediction" || md.Opset != 17 || !md.Distribution() {
		t.Errorf("unexpected metadata %+v", md)
	}
	if md.Training.ValidationNLL == nil || md.Training.ValidationBaselineNLL == nil || md.Training.Fold != "A" || len(md.Training.Files) != md.Training.Series {
		t.Errorf("training summary %+v", md.Training)
	}
	dm, ok := m.(detector.DistributionModel)
	if !ok {
		t.Fatalf("a v2 model loaded as %T, not a detector.DistributionModel", m)
	}
	W := m.Window()
	in := make([]float32, 3*W)
	for i := range in {
		in[i] = float32(math.Sin(float64(i) * 0.37))
	}
	mean, scale, pred := make([]float32, 3), make([]float32, 3), make([]float32, 3)
	if err := dm.PredictDistribution(in, 3, mean, scale); err != nil {
		t.Fatal(err)
	}
	if err := m.Predict(in, 3, pred); err != nil {
		t.Fatal(err)
	}
	for i := range pred {
		if pred[i] != mean[i] || !(scale[i] > 0) {
			t.Errorf("window %d: Predict %v, PredictDistribution mean %v scale %v", i, pred[i], mean[i], scale[i])
		}
	}
	if err := dm.PredictDistribution(in, 3, mean, scale[:2]); err == nil || !strings.Contains(err.Error(), "scale has room") {
		t.Errorf("short scale slice: %v", err)
	}
	if err := dm.PredictDistribution(in, 3, mean[:2], scale); err == nil || !strings.Contains(err.Error(), "output has room") {
		t.Errorf("short mean slice: %v", err)
	}
	// A v1 model is not a distribution model.
	v1, err := LoadDefault(Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	if _, ok := v1.(detector.DistributionModel); ok {
		t.Errorf("the v1 default model (%T) claims to be a detector.DistributionModel", v1)
	}
}

func TestLoadRejectsBadV2Models(t *testing.T) {
	v2 := os.DirFS(v2Dir)
	v2JSON := func(edit func(map[string]any)) []byte { return editJSONFrom(t, v2, ".", edit) }
	v1ONNX, err := fs.ReadFile(models.Default, models.DefaultDir+"/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		src     fs.FS
		replace map[string][]byte
		field   string // the FieldError's field, or "" for another error
		want    string
	}{
		{"no scale_output", v2, map[string][]byte{"model.json": v2JSON(set("scale_output", nil))}, "scale_output", "is required"},
		{"scale_output is output", v2, map[string][]byte{"model.json": v2JSON(set("scale_output", "prediction"))}, "scale_output", "must differ"},
		{"scale_output is input", v2, map[string][]byte{"model.json": v2JSON(set("scale_output", "window"))}, "scale_output", "must differ"},
		{"scale_output name mismatch", v2, map[string][]byte{"model.json": v2JSON(set("scale_output", "sigma"))}, "scale_output", `"sigma", but model.onnx has no such output`},
		{"output name mismatch", v2, map[string][]byte{"model.json": v2JSON(set("output", "mu"))}, "output", `"mu", but model.onnx has no such output`},
		{"input name mismatch", v2, map[string][]byte{"model.json": v2JSON(set("input", "x"))}, "", `model.json field "input" says "x"`},
		{"window mismatch", v2, map[string][]byte{"model.json": v2JSON(set("window", 17))}, "", `must have shape [batch, 17, 1]`},
		{"v2 json, v1 network", v2, map[string][]byte{"model.onnx": v1ONNX}, "format", "needs exactly two outputs"},
		{"v1 json, v2 network", v2, map[string][]byte{"model.json": v2JSON(set("format", Format))}, "", "want exactly one input and one output, got 1 and 2"},
		{"format v3", v2, map[string][]byte{"model.json": v2JSON(set("format", "sentinel-mesh/v3"))}, "format", "must be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadFS(modelFSFrom(t, c.src, ".", c.replace), "m", Options{})
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			t.Log(err)
			var fe *FieldError
			if got := errors.As(err, &fe); got != (c.field != "") || (got && fe.Field != c.field) {
				t.Fatalf("error %q: want a FieldError for %q", err, c.field)
			}
		})
	}
}

func TestLoadFromDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"model.json", "model.onnx"} {
		b, err := fs.ReadFile(models.Default, models.DefaultDir+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Load(dir, Options{IntraOpThreads: 1, DisableSpinning: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Predict(make([]float32, 3*m.Window()), 3, make([]float32, 3)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "missing"), Options{}); err == nil || !strings.Contains(err.Error(), "cannot load model") {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestInitRuntime(t *testing.T) {
	if err := InitRuntime(""); err != nil {
		t.Fatal(err)
	}
	if err := InitRuntime(""); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if RuntimeLibrary() == "" {
		t.Fatal("RuntimeLibrary is empty after InitRuntime")
	}
	if err := InitRuntime("/nonexistent/libonnxruntime.so"); err == nil {
		t.Fatal("switching to another library was accepted")
	}
}

func TestFindLibrary(t *testing.T) {
	if _, err := findLibrary("/nonexistent/libonnxruntime.so"); err == nil {
		t.Error("a missing explicit library was accepted")
	}
	t.Setenv(LibraryEnv, "/nonexistent/lib.so")
	if _, err := findLibrary(""); err == nil || !strings.Contains(err.Error(), LibraryEnv) {
		t.Errorf("a missing $%s library: %v", LibraryEnv, err)
	}
	t.Setenv(LibraryEnv, "")
	p, err := findLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, libraryRelPath) {
		t.Errorf("found %s", p)
	}
	// From a directory outside any module there is nothing to find.
	t.Chdir(t.TempDir())
	if exe, _ := os.Executable(); fileExists(filepath.Join(filepath.Dir(exe), libraryRelPath)) {
		t.Skip("the test binary's directory has a library")
	}
	if _, err := findLibrary(""); err == nil || !strings.Contains(err.Error(), "install-onnxruntime.sh") {
		t.Errorf("outside the module: %v", err)
	}
}

func fileExists(p string) bool { return checkFile(p) == nil }

func TestParseMetadataFieldError(t *testing.T) {
	_, err := ParseMetadata([]byte(`{"format":"sentinel-mesh/v1","version":"v","window":32,"input":"window","output":"prediction","opset":17,"normalisation":{"kind":"zscore-window","min_scale_rel":0.001,"min_scale_abs":0,"clip":10}}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "normalisation.min_scale_abs" {
		t.Fatalf("got %v, want a FieldError for normalisation.min_scale_abs", err)
	}
}

func BenchmarkPredict(b *testing.B) {
	for _, threads := range []int{0, 1} {
		for _, batch := range []int{1, 256, 1024, 4096} {
			b.Run(fmt.Sprintf("threads=%d/batch=%d", threads, batch), func(b *testing.B) {
				var m Loaded
				var err error
				if dir := os.Getenv(ModelDirEnv); dir != "" {
					m, err = Load(dir, Options{IntraOpThreads: threads})
				} else {
					m, err = LoadDefault(Options{IntraOpThreads: threads})
				}
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				in := make([]float32, batch*m.Window())
				for i := range in {
					in[i] = float32(math.Sin(float64(i) * 0.37))
				}
				out := make([]float32, batch)
				if err := m.Predict(in, batch, out); err != nil { // warm up, allocate tensors
					b.Fatal(err)
				}
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if err := m.Predict(in, batch, out); err != nil {
						b.Fatal(err)
					}
					n++
				}
				b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "windows/s")
			})
		}
	}
}
