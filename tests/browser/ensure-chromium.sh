#!/bin/sh
# Install Debian's Chromium for the browser tests when it is missing.
# Playwright drives this browser; it cannot download its own here.  Where
# apt-get is not available, the browser tests are skipped, unless
# GATEWAY_BROWSER_REQUIRED=1 (as in CI) makes them fail instead.
browser="${GATEWAY_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null
  exit $?
fi
echo "note: $browser is missing and cannot be installed here;" \
  "the browser tests will be skipped" >&2
