package remotewrite

import (
	"context"
	"net/http"

	"github.com/sentinel-mesh/sentinel-mesh/detector"
)

// BatchAppender is an optional interface of the Appender given to
// NewHandler, for Appenders that forward samples somewhere durable (the
// Kafka producer of --target=receiver). The handler opens one batch per
// request, appends the request's valid series to it and commits it before it
// answers: a Commit error answers 503 so the sender keeps the data and
// retries.
type BatchAppender interface {
	detector.Appender
	Begin() Batch
}

// Batch collects the series of one request. Append must copy what it keeps
// (detector.Appender's contract). Commit returns once the batch is durably
// accepted, or with an error; it is called exactly once.
type Batch interface {
	detector.Appender
	Commit(ctx context.Context) error
}

// appendRequest appends wr through a per-request Batch when the Appender
// supports it, and directly otherwise.
func (h *Handler) appendRequest(ctx context.Context, res result, wr *WriteRequest) result {
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
