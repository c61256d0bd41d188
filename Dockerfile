# ghl-mock in a container, for users who prefer one to `cargo install`.
# Not built in this project's CI (the machines have no Docker daemon to
# spare); the same binary is what CI installs and tests.
#
#   docker build -t ghl-mock .
#   docker run --rm -p 4010:4010 ghl-mock
#   docker run --rm -p 4010:4010 -e GHL_MOCK_ADMIN_TOKEN=choose-one ghl-mock serve --host 0.0.0.0 --admin-remote
#
# The API answers on port 4010 of the host. The control plane (/__admin/)
# answers loopback clients only: from outside the container, start it with
# --admin-remote and an admin token, as the last line shows.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo install --locked --path mock-server --root /out

FROM debian:bookworm-slim
COPY --from=build /out/bin/ghl-mock /usr/local/bin/ghl-mock
RUN useradd --system --uid 10001 --no-create-home ghl-mock
USER ghl-mock
EXPOSE 4010
# /__admin/health answers 200 once the mock serves (bash's /dev/tcp: no curl in the image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD \
  bash -c 'exec 3<>/dev/tcp/127.0.0.1/4010 && printf "GET /__admin/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "'
ENTRYPOINT ["ghl-mock"]
CMD ["serve", "--host", "0.0.0.0"]
