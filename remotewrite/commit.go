package remotewrite

import (
	"context"
	"net/http"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// BatchAppender is an optional interface of the Appender given to
// NewHandler: the handler opens one batch per request, appends the request's
// valid series to it and commits it before it answers. The detector batches
// its bookkeeping; the Kafka producer of --target=receiver forwards the batch
// durably, and a Commit error answers 503 so the sender keeps the data and
// retries.
type BatchAppender = detector.BatchAppender

// Batch collects the series of one request (detector.Batch).
type Batch = detector.Batch

// appendRequest appends wr through a per-request Batch when the Appender
// supports it, and directly otherwise.
func (h *Handler) appendRequest(ctx context.Context, res result, wr *WriteRequest) result {
	if len(wr.Families) > 0 {
		// Before the samples: a request carrying both types its series.
		if ma, ok := h.app.(detector.MetadataAppender); ok {
			ma.AppendMetadata(res.tenant, wr.Families)
		}
	}
	ba, ok := h.app.(BatchAppender)
	if !ok {
		return h.appendAll(h.app, res, wr)
	}
	b := ba.Begin()
	res = h.appendAll(b, res, wr)
	if err := b.Commit(ctx); err != nil {
		res.written, res.histogramsWritten = 0, 0
		return fail(res, http.StatusServiceUnavailable, "cannot forward samples: %v", err)
	}
	return res
}
