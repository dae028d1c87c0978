// Command sentinel-mesh receives Prometheus remote-write, scores every series
// with an LSTM and publishes anomaly_score. See README.md.
package main

import (
	"os"

	"github.com/sentinel-mesh/sentinel-mesh/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }
