# Herald's two images, from the repository root:
#   docker build --target controller -t REGISTRY/herald-controller:TAG .
#   docker build --target speaker    -t REGISTRY/herald-speaker:TAG .
# Static binaries (no cgo) on distroless/static: no shell, no package
# manager, CA certificates and /etc/passwd only.

ARG GO_VERSION=1.26
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY controller/ controller/
COPY speaker/ speaker/
COPY internal/ internal/
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o /out/controller ./controller && \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o /out/speaker ./speaker

# The controller runs as an unprivileged user (the manifests also set
# runAsNonRoot, a read-only root filesystem and no capabilities).
FROM gcr.io/distroless/static-debian12:nonroot AS controller
COPY --from=build /out/controller /controller
USER 65532:65532
ENTRYPOINT ["/controller"]

# The speaker runs as root: it needs NET_RAW (ARP, NDP) and, for BGP's
# listener on port 179, NET_BIND_SERVICE, and Kubernetes gives added
# capabilities to a non-root process only through file capabilities. The
# manifests drop every other capability and forbid privilege escalation.
FROM gcr.io/distroless/static-debian12 AS speaker
COPY --from=build /out/speaker /speaker
USER 0:0
ENTRYPOINT ["/speaker"]
