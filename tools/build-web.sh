#!/usr/bin/env bash
# Builds the dashboard page: web/dist/index.html and web/dist/index.html.gz (the file the
# firmware and the daemon embed). Installs web/node_modules with `npm ci` only when it is
# missing or web/package-lock.json changed since the last install.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"

die() { echo "build-web.sh: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is not installed: install Node.js 18 or newer (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed: install it with Node.js 18 or newer (Debian: apt-get install npm)"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
[ "$node_major" -ge 18 ] 2>/dev/null || die "Node.js $(node --version 2>/dev/null || echo '?') is too old: 18 or newer is needed"

cd "$web"
[ -f package-lock.json ] || die "web/package-lock.json is missing"

# The copy of the lock file that node_modules was installed from.
stamp="node_modules/.build-web-lock"
if [ ! -d node_modules ] || ! cmp -s package-lock.json "$stamp"; then
  echo "build-web.sh: installing web/node_modules (npm ci)"
  npm ci --no-audit --no-fund || die "npm ci failed in web/ (is the npm registry reachable?)"
  cp package-lock.json "$stamp"
fi

npm run --silent build || die "the web build failed"
