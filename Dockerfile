# syntax=docker/dockerfile:1
# rollout-router image: the controller (`rollout-router run`, the default command) and, from the
# same binary, Argo Rollouts' traffic-router plugin (`rollout-router argo-plugin`).
#
#   docker build -t rollout-router:0.1.0 .
#
# The binary is linked statically (glibc, static-pie) so that it can also be copied into Argo
# Rollouts' distroless/static controller image, which has no libc (docs/building.md).

# bookworm: the same glibc (2.36) as the distroless runtime below.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros, which must stay dynamic.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" \
    && RUSTFLAGS='-C target-feature=+crt-static' \
       cargo build --release --locked -p rollout-router --bin rollout-router --target "$target" \
    && cp "target/$target/release/rollout-router" /rollout-router

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /rollout-router /rollout-router
# distroless `nonroot`; the Helm chart also sets runAsNonRoot and a read-only root filesystem.
USER 65532:65532
# Admin server: /metrics, /live, /ready (--admin-addr).
EXPOSE 8080
ENTRYPOINT ["/rollout-router"]
CMD ["run"]
