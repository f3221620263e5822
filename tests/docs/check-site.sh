#!/usr/bin/env bash
# make site-check: build the Doxygen site, then render every page in
# headless Chromium at 1280 px and check it (tests/docs/check_site.py):
# broken local links and images, pages missing from the sidebar tree,
# content wider than the page. Screenshots go to build/docs/screenshots/.
# Ends with one line "N passed, N failed", one case per page.
set -u
cd "$(dirname "$0")/../.." || exit 1

bash tests/deps.sh check chromium chromedriver cjk-font 2>/dev/null ||
    bash tests/deps.sh install chromium chromedriver cjk-font || exit 1
make --no-print-directory docs || exit 1
rm -rf build/docs/screenshots
exec python3 tests/docs/check_site.py build/docs/html build/docs/screenshots
