package plugin_test

import (
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/require"

	"github.com/sentinel-mesh/sentinel-mesh/grafana-plugin/pkg/plugin"
)

// startPluginBinary starts gpx_sentinel_mesh the way Grafana does: a
// hashicorp/go-plugin client with the SDK's handshake (protocol 2, magic
// cookie grafana_plugin_type=datasource) over gRPC.
func startPluginBinary(t *testing.T) goplugin.ClientProtocol {
	t.Helper()
	if buildErrors != "" {
		t.Fatal(buildErrors)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {
				"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
				"resource":    &grpcplugin.ResourceGRPCPlugin{},
				"data":        &grpcplugin.DataGRPCPlugin{},
			},
		},
		Cmd:              exec.Command(pluginBin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error}),
		StartTimeout:     30 * time.Second,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	require.NoError(t, err)
	return rpc
}

func pluginContext(url string, jsonData map[string]any, secure map[string]string) *pluginv2.PluginContext {
	jd, _ := json.Marshal(jsonData)
	return &pluginv2.PluginContext{
		OrgId:    1,
		PluginId: plugin.ID,
		DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{
			Id: 1, Uid: "sm", Name: "Sentinel Mesh", Url: url, JsonData: jd,
			DecryptedSecureJsonData: secure, LastUpdatedMS: time.Now().UnixMilli(),
		},
	}
}

func TestPluginOverGRPC(t *testing.T) {
	requireServer(t)
	rpc := startPluginBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jd, sec := basicAuth("")
	pctx := pluginContext(serverURL, jd, sec)

	t.Run("CheckHealth", func(t *testing.T) {
		raw, err := rpc.Dispense("diagnostics")
		require.NoError(t, err)
		diag := raw.(grpcplugin.DiagnosticsClient)
		res, err := diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pctx})
		require.NoError(t, err)
		require.Equal(t, pluginv2.CheckHealthResponse_OK, res.Status, res.Message)
		require.Contains(t, res.Message, "Connected to Sentinel Mesh")

		bad := pluginContext(serverURL, jd, map[string]string{plugin.SecureBasicAuthPassword: "nope"})
		bad.DataSourceInstanceSettings.Id, bad.DataSourceInstanceSettings.Uid = 2, "sm-bad"
		res, err = diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: bad})
		require.NoError(t, err)
		require.Equal(t, pluginv2.CheckHealthResponse_ERROR, res.Status)
		require.Contains(t, res.Message, "Authentication failed")
	})

	t.Run("QueryData", func(t *testing.T) {
		raw, err := rpc.Dispense("data")
		require.NoError(t, err)
		dc := raw.(grpcplugin.DataClient)
		now := time.Now()
		tr := &pluginv2.TimeRange{FromEpochMS: now.Add(-time.Hour).UnixMilli(), ToEpochMS: now.Add(time.Minute).UnixMilli()}
		res, err := dc.QueryData(ctx, &pluginv2.QueryDataRequest{
			PluginContext: pctx,
			Queries: []*pluginv2.DataQuery{
				{RefId: "A", QueryType: plugin.QueryTypeSeries, TimeRange: tr, Json: []byte(`{"matchers":"{instance=\"b\"}","fields":["score"]}`)},
				{RefId: "B", QueryType: plugin.QueryTypeAnomalies, TimeRange: tr, Json: []byte(`{"state":"open"}`)},
				{RefId: "C", QueryType: plugin.QueryTypeSeries, TimeRange: tr, Json: []byte(`{"matchers":"{"}`)},
			},
		})
		require.NoError(t, err)

		a := res.Responses["A"]
		require.Empty(t, a.Error)
		frames, err := data.UnmarshalArrowFrames(a.Frames)
		require.NoError(t, err)
		require.Len(t, frames, 1)
		require.Equal(t, data.FrameTypeTimeSeriesMulti, frames[0].Meta.Type, "the frame type survives the wire")
		require.Equal(t, "score", frames[0].Fields[1].Name)
		require.Equal(t, "b", frames[0].Fields[1].Labels["instance"])
		require.Positive(t, frames[0].Rows())

		b := res.Responses["B"]
		require.Empty(t, b.Error)
		frames, err = data.UnmarshalArrowFrames(b.Frames)
		require.NoError(t, err)
		require.Equal(t, 3, frames[0].Rows())

		c := res.Responses["C"]
		require.Contains(t, c.Error, "bad_data")
		require.EqualValues(t, 400, c.Status)
	})

	t.Run("CallResource", func(t *testing.T) {
		raw, err := rpc.Dispense("resource")
		require.NoError(t, err)
		rc := raw.(grpcplugin.ResourceClient)
		stream, err := rc.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: pctx, Method: "GET", Path: "label/job/values", Url: "label/job/values"})
		require.NoError(t, err)
		msg, err := stream.Recv()
		require.NoError(t, err)
		require.EqualValues(t, 200, msg.Code)
		require.JSONEq(t, `{"status":"success","data":["api","node","worker"]}`, string(msg.Body))
	})
}
