#!/usr/bin/env bash
# The test suite: vet, every package's tests with the race detector, then the
# end-to-end tests (headless Chromium and pion callers against a real
# gateway) inside a loopback-only network namespace, so no packet can leave
# 127.0.0.1. Usage: scripts/test.sh  (or: make test)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:-} -tags=nolibopusfile"
export PATH="$PATH:$(go env GOPATH)/bin"

echo "== go vet"
go vet ./...

echo "== unit and integration tests (race detector)"
pkgs=$(go list ./... | grep -v '/test/e2e$')
go test -race -count=1 -timeout 20m $pkgs

echo "== end-to-end tests (loopback-only network namespace)"
go test -c -race -o bin/e2e.test ./test/e2e
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  unshare -n sh -c 'ip link set lo up && exec bin/e2e.test -test.count=1 -test.timeout=15m -test.v' 
else
  echo "(no network namespace available: running on the host's loopback)"
  bin/e2e.test -test.count=1 -test.timeout=15m -test.v
fi
