package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// ID is the data source plugin's ID (src/datasource/plugin.json).
const ID = "sentinelmesh-anomaly-datasource"

// Authentication modes of the data source.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// JSONData is the non-secret part of the data source settings (jsonData).
// The URL is Grafana's own url field.
type JSONData struct {
	// Tenant is sent as X-Scope-OrgID; empty sends no header.
	Tenant string `json:"tenant,omitempty"`
	// AuthType is none, basic or bearer.
	AuthType      string `json:"authType,omitempty"`
	BasicAuthUser string `json:"basicAuthUser,omitempty"`
	// TimeoutSeconds bounds each request to Sentinel Mesh (default 30).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// Keys of secureJsonData. Secrets are read only from there and never logged.
const (
	SecureBasicAuthPassword = "basicAuthPassword"
	SecureBearerToken       = "bearerToken"
)

// Settings are the parsed data source settings.
type Settings struct {
	URL      *url.URL
	JSONData JSONData
	Timeout  time.Duration
	password string
	token    string
}

// String never includes secrets.
func (s Settings) String() string {
	return fmt.Sprintf("url=%s tenant=%q auth=%s", s.URL, s.JSONData.Tenant, s.JSONData.AuthType)
}

// LoadSettings parses and validates the instance settings.
func LoadSettings(is backend.DataSourceInstanceSettings) (Settings, error) {
	var s Settings
	if len(is.JSONData) > 0 {
		if err := json.Unmarshal(is.JSONData, &s.JSONData); err != nil {
			return s, fmt.Errorf("invalid jsonData: %w", err)
		}
	}
	raw := strings.TrimSpace(is.URL)
	if raw == "" {
		return s, errors.New("the URL of Sentinel Mesh is not set")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("invalid URL %q: want http(s)://host[:port][/path]", raw)
	}
	if u.User != nil {
		return s, errors.New("the URL must not contain credentials; use basic auth settings")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	s.URL = u
	switch s.JSONData.AuthType {
	case "":
		s.JSONData.AuthType = AuthNone
	case AuthNone:
	case AuthBasic:
		if s.JSONData.BasicAuthUser == "" {
			return s, errors.New("basic auth needs a user")
		}
		s.password = is.DecryptedSecureJSONData[SecureBasicAuthPassword]
	case AuthBearer:
		s.token = is.DecryptedSecureJSONData[SecureBearerToken]
		if s.token == "" {
			return s, errors.New("bearer auth needs a token")
		}
	default:
		return s, fmt.Errorf("unknown authType %q (want none, basic or bearer)", s.JSONData.AuthType)
	}
	if len(s.JSONData.Tenant) > 150 {
		return s, errors.New("tenant ID longer than 150 bytes")
	}
	s.Timeout = 30 * time.Second
	if t := s.JSONData.TimeoutSeconds; t > 0 {
		s.Timeout = time.Duration(min(t, 600)) * time.Second
	}
	return s, nil
}
