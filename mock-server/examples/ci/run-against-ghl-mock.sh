#!/usr/bin/env bash
# Runs an integration's tests against ghl-mock, as a CI job does: starts
# `ghl-mock serve` in the background with a fixture, waits until it answers,
# exports where it is and its tokens, runs the command given, then lets the
# client behaviour report judge what the integration did (JUnit in
# report.xml), stops the mock and exits non-zero if the tests or the report
# failed.
#
#   run-against-ghl-mock.sh FIXTURE -- COMMAND [ARGS…]
#
# GHL_MOCK_PORT (default 4010; 0: any free port), GHL_MOCK_FAIL_ON (default all) and
# GHL_MOCK_OUT (where report.xml, ghl-mock.log and tokens.env go; default .)
# change the defaults. The command sees GHL_BASE_URL, GHL_MOCK_URL and every
# GHL_PIT_<NAME> of the fixture's private integrations.
set -euo pipefail

fixture="${1:?usage: run-against-ghl-mock.sh FIXTURE -- COMMAND [ARGS…]}"
shift
[ "${1:-}" = "--" ] && shift
[ "$#" -gt 0 ] || { echo "run-against-ghl-mock.sh: no command to run" >&2; exit 2; }

port="${GHL_MOCK_PORT:-4010}"
out="${GHL_MOCK_OUT:-.}"
mkdir -p "$out"

ghl-mock serve --port "$port" --fixture "$fixture" --tokens-file "$out/tokens.env" >"$out/ghl-mock.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# The banner names the port (the one asked for, or the one port 0 got); the
# port accepting connections is enough (a runner may have no curl).
url=""
for _ in $(seq 1 200); do
  [ -n "$url" ] || url=$(sed -n 's/^ghl-mock listening on \(http:[^ ]*\).*/\1/p' "$out/ghl-mock.log" | head -n 1)
  if [ -n "$url" ] && (exec 3<>"/dev/tcp/127.0.0.1/${url##*:}") 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { url=""; break; }
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "run-against-ghl-mock.sh: ghl-mock did not start:" >&2
  cat "$out/ghl-mock.log" >&2
  exit 1
fi
export GHL_MOCK_URL="$url"
export GHL_BASE_URL="$url"

set -a
# shellcheck disable=SC1091
. "$out/tokens.env"
set +a

tests=0
"$@" || tests=$?
report=0
ghl-mock report --fail-on "${GHL_MOCK_FAIL_ON:-all}" --format junit >"$out/report.xml" || report=$?
echo "run-against-ghl-mock.sh: tests exited $tests, the report $report (JUnit in $out/report.xml)"
[ "$tests" -eq 0 ] && [ "$report" -eq 0 ]
