package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// MaxResponseBytes bounds the body read from Sentinel Mesh.
const MaxResponseBytes = 64 << 20

// Client talks to the Sentinel Mesh HTTP API.
type Client struct {
	base   *url.URL
	http   *http.Client
	tenant string
	auth   func(r *http.Request)
}

// NewClient returns a client for the settings.
func NewClient(s Settings) *Client {
	c := &Client{
		base:   s.URL,
		http:   &http.Client{Timeout: s.Timeout, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		tenant: s.JSONData.Tenant,
		auth:   func(*http.Request) {},
	}
	switch s.JSONData.AuthType {
	case AuthBasic:
		user, pass := s.JSONData.BasicAuthUser, s.password
		c.auth = func(r *http.Request) { r.SetBasicAuth(user, pass) }
	case AuthBearer:
		tok := s.token
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	return c
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// APIError is an error answer of the API, or a transport failure (Status 0).
type APIError struct {
	Status    int
	ErrorType string
	Message   string
}

func (e *APIError) Error() string {
	switch {
	case e.Status == 0:
		return e.Message
	case e.ErrorType != "":
		return fmt.Sprintf("sentinel mesh: %s (%s, HTTP %d)", e.Message, e.ErrorType, e.Status)
	}
	return fmt.Sprintf("sentinel mesh: HTTP %d: %s", e.Status, e.Message)
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// Get calls GET /api/v1/<path>?<q> and decodes data into out. It returns the
// response's warnings.
func (c *Client) Get(ctx context.Context, path string, q url.Values, out any) ([]string, error) {
	body, status, err := c.Raw(ctx, path, q)
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		msg := string(body)
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, &APIError{Status: status, Message: "unexpected response: " + msg}
	}
	if env.Status != "success" || status/100 != 2 {
		return nil, &APIError{Status: status, ErrorType: env.ErrorType, Message: env.Error}
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return nil, fmt.Errorf("cannot decode %s response: %w", path, err)
		}
	}
	return env.Warnings, nil
}

// Raw calls GET /api/v1/<path>?<q> and returns the body and status code
// whatever the status.
func (c *Client) Raw(ctx context.Context, path string, q url.Values) ([]byte, int, error) {
	u := *c.base
	u.Path += "/api/v1/" + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "grafana-sentinelmesh-anomaly-datasource")
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	c.auth(req)
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error includes the URL, never the credentials (they are in headers).
		return nil, 0, &APIError{Message: fmt.Sprintf("cannot reach Sentinel Mesh: %v", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, resp.StatusCode, &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("cannot read response: %v", err)}
	}
	if len(body) > MaxResponseBytes {
		return nil, resp.StatusCode, &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("response larger than %d bytes", MaxResponseBytes)}
	}
	return body, resp.StatusCode, nil
}

// Anomaly mirrors the API's anomaly JSON.
type Anomaly struct {
	ID           string            `json:"id"`
	Tenant       string            `json:"tenant"`
	Labels       map[string]string `json:"labels"`
	State        string            `json:"state"`
	Direction    string            `json:"direction"`
	OpenedAt     time.Time         `json:"openedAt"`
	ClosedAt     *time.Time        `json:"closedAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	Value        *float64          `json:"value"`
	Expected     *float64          `json:"expected"`
	Lower        *float64          `json:"lower"`
	Upper        *float64          `json:"upper"`
	Score        *float64          `json:"score"`
	PeakScore    *float64          `json:"peakScore"`
	ModelVersion string            `json:"modelVersion"`
	Corroborated bool              `json:"corroborated"`
	Cause        string            `json:"cause"`
}

// Incident mirrors the API's incident JSON.
type Incident struct {
	ID        string            `json:"id"`
	Tenant    string            `json:"tenant"`
	Group     map[string]string `json:"group"`
	State     string            `json:"state"`
	OpenedAt  time.Time         `json:"openedAt"`
	ClosedAt  *time.Time        `json:"closedAt"`
	PeakScore *float64          `json:"peakScore"`
	Count     int               `json:"count"`
	Anomalies []Anomaly         `json:"anomalies"`
}

// Series mirrors the API's series history JSON.
type Series struct {
	Tenant     string            `json:"tenant"`
	Labels     map[string]string `json:"labels"`
	Timestamps []int64           `json:"timestamps"`
	Value      []*float64        `json:"value"`
	Score      []*float64        `json:"score"`
	Expected   []*float64        `json:"expected"`
	Lower      []*float64        `json:"lower"`
	Upper      []*float64        `json:"upper"`
}

// BuildInfo mirrors /api/v1/status/buildinfo.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"goVersion"`
}

// ModelInfo mirrors /api/v1/model.
type ModelInfo struct {
	Loaded    bool    `json:"loaded"`
	Version   string  `json:"version"`
	Window    int     `json:"window"`
	Threshold float64 `json:"threshold"`
}

// IsAuthError reports whether err is a 401 or 403 from the server.
func IsAuthError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden)
}
