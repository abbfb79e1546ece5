#!/usr/bin/env bash
# Best effort: the browser tests (report and web UI in headless Chromium) need Debian's chromium and
# chromium-driver. Install them when missing and we may (root + apt-get); otherwise those tests skip.
# Never fails the build.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium + chromium-driver for the browser tests (apt-get)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
        >/dev/null 2>&1 || echo "could not install chromium; the browser tests will skip"
else
    echo "chromium not found; the browser tests will skip (install chromium + chromium-driver to run them)"
fi
exit 0
