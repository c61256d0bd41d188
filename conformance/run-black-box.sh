#!/usr/bin/env bash
# Black-box conformance: start the `ghl-mock` binary the way a user does, with
# a fixture of known (fake) tokens, and run the conformance suite against it
# as a *remote* target: HTTP to its port only, the control plane named by
# GHL_ADMIN_URL. Prints the suite's summary table (with the request count),
# writes JUnit XML, stops the server, and exits with the suite's status.
#
#   conformance/run-black-box.sh            # the whole suite
#   conformance/run-black-box.sh auth::     # only tests whose name contains auth::
#
# GHL_BLACK_BOX_PORT picks the port (default: a free one); GHL_JUNIT the XML
# path (default: target/conformance-black-box.xml); GHL_CONFORMANCE_BIN an
# installed `ghl-conformance` to run instead of the suite's test target.
set -euo pipefail
cd "$(dirname "$0")/.."

fixture=conformance/fixtures/black-box.yaml
pit=pit-fa4efa4e-0000-4000-8000-00000000000a
low_scope_pit=pit-fa4efa4e-0000-4000-8000-00000000000b
location=bbLocationA000000001

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Port 0 by default: the kernel picks a free port when ghl-mock binds, and the
# banner ("ghl-mock listening on http://127.0.0.1:PORT") names it. A port probed
# free here could be taken (say, as an ephemeral client port) before the bind.
port="${GHL_BLACK_BOX_PORT:-0}"

# Build first, so that waiting for the server below is not waiting for rustc.
cargo build -q -p ghl-mock
log=$(mktemp)
cargo run -q -p ghl-mock -- serve --port "$port" --frozen-clock --fixture "$fixture" >"$log" 2>&1 &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT

ready=no
url=""
for _ in $(seq 1 120); do
  if [ -z "$url" ]; then
    url=$(sed -n 's/^ghl-mock listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
  fi
  # A fresh machine may have no curl: the port accepting connections is enough.
  if [ -n "$url" ] && listening "${url##*:}"; then ready=yes; break; fi
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  sleep 0.5
done
if [ "$ready" != yes ]; then
  echo "run-black-box: ghl-mock did not answer on port $port; its output:" >&2
  cat "$log" >&2
  exit 1
fi
echo "run-black-box: ghl-mock (pid $server) answers on $url"

status=0
export GHL_TARGET=remote GHL_BASE_URL="$url" GHL_ADMIN_URL="$url" GHL_PIT="$pit" GHL_LOCATION_ID="$location" \
  GHL_LOW_SCOPE_PIT="$low_scope_pit" GHL_JUNIT="${GHL_JUNIT:-$PWD/target/conformance-black-box.xml}"
if [ -n "${GHL_CONFORMANCE_BIN:-}" ]; then
  "$GHL_CONFORMANCE_BIN" --target remote "$@" || status=$?
else
  cargo test -q -p ghl-conformance --test suite -- "$@" || status=$?
fi
echo "run-black-box: suite exited with status $status; stopping ghl-mock"
exit "$status"
