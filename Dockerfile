# syntax=docker/dockerfile:1
# voicegw: multi-stage build. The builder compiles with cgo against Debian's
# libopus and WebRTC audio-processing (the VAD, linked statically); the
# runtime image carries only libopus (the binary links libopus, libc and
# libm) and runs as an unprivileged user.
# Build offline from a vendored tree:  go mod vendor && docker build .

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopus-dev pkg-config libwebrtc-audio-processing-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# With a vendor/ directory in the context the build uses it and never
# touches the network; without one, modules come from GOPROXY.
COPY . .
ARG VERSION=dev
RUN if [ -d vendor ]; then export GOFLAGS=-mod=vendor GOPROXY=off; fi \
 && CGO_ENABLED=1 go build -tags nolibopusfile -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/voicegw ./cmd/voicegw \
 && CGO_ENABLED=1 go build -tags nolibopusfile -trimpath \
      -ldflags "-s -w" -o /out/loadtest ./cmd/loadtest

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopus0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 voicegw \
 && useradd --system --uid 10001 --gid voicegw --no-create-home --shell /usr/sbin/nologin voicegw
COPY --from=build /out/voicegw /out/loadtest /usr/local/bin/
USER 10001:10001
# HTTP (softphone, signaling, /metrics) and the WebRTC media UDP port; SIP
# (listen.sip: UDP/TCP 5060, TLS 5061) and its RTP range (listen.sip.rtp_ports)
# when a config enables trunks.
EXPOSE 8080/tcp 8443/udp 5060/udp 5060/tcp 5061/tcp 20000-29999/udp
ENTRYPOINT ["/usr/local/bin/voicegw"]
# Dev mode in a container: listen on all interfaces. A production
# deployment passes its own command (serve --config /etc/voicegw/config.yaml).
CMD ["serve", "--dev", "--http", "0.0.0.0:8080", "--media", "0.0.0.0:8443"]
