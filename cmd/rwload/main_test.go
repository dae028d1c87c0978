package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckLoopback(t *testing.T) {
	for u, ok := range map[string]bool{
		"http://127.0.0.1:9090/api/v1/write": true,
		"http://127.1.2.3/x":                 true,
		"http://[::1]:9090/api/v1/write":     true,
		"http://localhost:9090/x":            true,
		"http://10.0.0.1:9090/x":             false,
		"http://example.com/x":               false,
		"http://localhost.example.com/x":     false,
		"ftp://127.0.0.1/x":                  false,
	} {
		err := checkLoopback(u)
		require.Equal(t, ok, err == nil, "%s: %v", u, err)
	}
}

func TestValidateNeedsABound(t *testing.T) {
	o := options{url: "http://127.0.0.1:1/x", senders: 1, series: 1, version: 1}
	require.ErrorContains(t, o.validate(), "would never stop")
}

func TestRunStopsByItself(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := run(options{url: srv.URL, senders: 2, series: 10, version: 2, requests: 7, step: time.Second, timeout: time.Second}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "requests 7")
	require.Contains(t, out.String(), "accepted samples 70")
}
