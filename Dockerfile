# Image of one bundlex node: the static binary alone on an empty base image.
#
# The binary is built outside Docker, so building needs no base image:
#
#   mkdir -p .build/empty
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
#     -o .build/bundlex ./cmd/bundlex
#   docker build --build-arg VERSION=$VERSION -t bundlex:$VERSION .
#
# docs/docker.md explains the image, its volume and its limits. The image holds
# no CA certificates, because scratch has no system roots: an https_web peer needs
# a ca_file in its relationship, or a host directory mounted at /etc/ssl/certs.
FROM scratch

ARG VERSION=dev

LABEL org.opencontainers.image.title="bundlex" \
      org.opencontainers.image.description="SPIFFE federation and trust bundle exchange node" \
      org.opencontainers.image.version="${VERSION}"

COPY .build/bundlex /bundlex

# scratch has no shell to run mkdir and chown, so the data directory is copied
# from an empty build directory with the owner set here. An empty named volume
# mounted on it starts with this owner, so the node can write to it.
COPY --chown=65532:65532 .build/empty/ /var/lib/bundlex/

# No account database exists in scratch, so the user is numeric. 65532 is the
# "nonroot" user of the distroless images.
USER 65532:65532

VOLUME ["/var/lib/bundlex"]

# The bundle endpoint, the health and metrics server (when health.address is set
# to 0.0.0.0:8080), the Raft transport and the gossip listener (TCP and UDP).
EXPOSE 8443/tcp 8080/tcp 8300/tcp 8301/tcp 8301/udp

# The exec form needs no shell. The CLI finds the admin socket at
# /var/lib/bundlex/admin.sock unless BUNDLEX_ADMIN_SOCKET_PATH or BUNDLEX_DATA_DIR
# says otherwise.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/bundlex", "healthcheck", "--timeout", "4s"]

ENTRYPOINT ["/bundlex"]
CMD ["server", "--config", "/etc/bundlex/bundlex.yaml"]
