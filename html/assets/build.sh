#!/bin/sh
# Rebuilds the committed static assets of package html:
#   ../static/byok.css     Tailwind CSS 4 + daisyUI 5, scanned from ../templates and ../static/byok.js
#   ../static/htmx.min.js  htmx 2, copied from the npm package
# Versions are pinned in package.json and package-lock.json; node_modules/ is
# not committed. Needs node and npm (the npm registry), nothing else.
set -eu
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund --ignore-scripts
else
	npm install --no-audit --no-fund --ignore-scripts
fi
./node_modules/.bin/tailwindcss --input byok.input.css --output ../static/byok.css --minify
cp node_modules/htmx.org/dist/htmx.min.js ../static/htmx.min.js
echo "built ../static/byok.css ($(wc -c < ../static/byok.css) bytes) and ../static/htmx.min.js ($(wc -c < ../static/htmx.min.js) bytes)"
