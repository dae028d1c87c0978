# syntax=docker/dockerfile:1.7
#
# Sentinel Mesh images.
#   docker build -t sentinel-mesh .                               # default target: the server
#   docker build --target training -t sentinel-mesh-training .    # Node training image
#
# The builder runs the same steps as `make ort` (scripts/install-onnxruntime.sh, which
# fetches the pinned ONNX Runtime library with npm, hence node in the builder) and
# `make build` (go build -o bin/sentinel-mesh ./cmd/sentinel-mesh).

ARG GO_VERSION=1.26.8
ARG NODE_VERSION=22

# ---------------------------------------------------------------------------- builder
FROM golang:${GO_VERSION}-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# ONNX Runtime first: it only changes with the script (pinned version and checksums).
COPY scripts/install-onnxruntime.sh scripts/install-onnxruntime.sh
RUN bash scripts/install-onnxruntime.sh \
 && mkdir -p /out/lib \
 && cp -P .cache/onnxruntime/libonnxruntime.so* /out/lib/

COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# onnxruntime_go needs cgo; the binary links glibc dynamically (same Debian 12 as the runtime image).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o bin/sentinel-mesh ./cmd/sentinel-mesh \
 && install -D -m 0755 bin/sentinel-mesh /out/bin/sentinel-mesh \
 && install -d -m 0755 -o 65532 -g 65532 /out/data

# ---------------------------------------------------------------------------- training
# Training image for the retraining CronJob:
#   node src/train.js --source prometheus --prom-url URL --prom-query PROMQL --out /models
FROM node:${NODE_VERSION}-bookworm-slim AS training
ENV NODE_ENV=production HOME=/tmp
WORKDIR /app
COPY detector/training/package*.json ./
RUN if [ -f package-lock.json ]; then npm ci --omit=dev; else npm install --omit=dev; fi \
 && npm cache clean --force
# Only the sources: a host node_modules must not replace the one installed above.
COPY detector/training/src ./src
# The chart runs it as 65532 with a read-only root filesystem; only /tmp and the
# model volume are written.
USER 65532:65532
ENTRYPOINT ["node", "src/train.js"]
CMD ["--help"]

# ---------------------------------------------------------------------------- runtime
# distroless "cc" = base-debian12 + libstdc++/libgcc, which libonnxruntime (C++) needs.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /out/lib/ /usr/lib/
COPY --from=builder /out/bin/sentinel-mesh /usr/bin/sentinel-mesh
COPY --from=builder --chown=65532:65532 /out/data /data
ENV SENTINEL_ORT_LIB=/usr/lib/libonnxruntime.so
USER 65532:65532
WORKDIR /data
EXPOSE 9464
VOLUME ["/data"]
ENTRYPOINT ["/usr/bin/sentinel-mesh"]
CMD ["--storage.path=/data", "--web.listen-address=:9464"]
