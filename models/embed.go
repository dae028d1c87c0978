// Package models embeds the default Sentinel Mesh model (docs/model.md).
//
// The files in default/ are produced by `make model` (detector/training, see
// docs/training.md); load them with onnxmodel.LoadDefault or
// onnxmodel.LoadFS(models.Default, models.DefaultDir, opts).
package models

import "embed"

// DefaultDir is the directory of the default model inside Default.
const DefaultDir = "default"

// Default holds default/model.onnx, default/model.json and
// default/parity.json (the tfjs predictions used by the parity test).
//
//go:embed default
var Default embed.FS
