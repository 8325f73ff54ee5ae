#!/bin/sh
# Installs the real npm packages the compatibility tests run (see
# fixtures/npm/README.md): each fixtures/npm/<project> from its lock file,
# and create-cloudflare's own templates, unpacked from the npm registry into
# target/npm-fixtures/templates/<template> with their dependencies. Installs
# node and npm from apt when they are missing. Safe to run again: what is
# already there is kept.
set -eu
cd "$(dirname "$0")/.."

# create-cloudflare's version whose templates the tests run.
C3_VERSION=2.67.4
# Bump to fetch the templates again after changing the list below.
TEMPLATES_REVISION=3

if ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing node and npm (the compatibility tests install npm packages)..."
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm
fi

for project in fixtures/npm/*/; do
  [ -f "$project/package-lock.json" ] || continue
  if [ ! -d "$project/node_modules" ]; then
    echo "npm ci in $project"
    (cd "$project" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # Projects bundled ahead of time (fixtures/npm/bundled) build into dist/.
  if grep -q '"build"' "$project/package.json" && [ ! -d "$project/dist" ]; then
    (cd "$project" && npm run --silent build)
  fi
done

out=target/npm-fixtures
templates=$out/templates
if [ ! -f "$templates/.c3-$C3_VERSION-$TEMPLATES_REVISION" ]; then
  rm -rf "$out/create-cloudflare" "$templates"
  mkdir -p "$out/create-cloudflare" "$templates"
  echo "fetching create-cloudflare@$C3_VERSION templates from npm"
  (cd "$out/create-cloudflare" && npm pack "create-cloudflare@$C3_VERSION" --silent >/dev/null &&
    tar xzf "create-cloudflare-$C3_VERSION.tgz")
  c3=$out/create-cloudflare/package/templates
  # name: the template's folder in the package.
  for pair in hello-world-js:hello-world/js hello-world-ts:hello-world/ts \
    scheduled-ts:scheduled/ts openapi-ts:openapi/ts hono:hono/workers/templates \
    assets-js:hello-world-with-assets/js assets-only:hello-world-assets-only/templates; do
    name=${pair%%:*}
    cp -R "$c3/${pair#*:}" "$templates/$name"
    # What create-cloudflare fills in when it copies a template.
    for config in "$templates/$name"/wrangler.json*; do
      sed -i "s/<WORKER_NAME>/$name/; s/<COMPATIBILITY_DATE>/2025-09-01/" "$config"
    done
  done
  # The Hono template's package.json comes from create-hono; only hono is needed.
  echo '{"name":"hono","private":true,"dependencies":{"hono":"^4"}}' >"$templates/hono/package.json"
  for template in "$templates"/*/; do
    if grep -q '"dependencies"' "$template/package.json"; then
      echo "npm install in $template"
      (cd "$template" && npm install --omit=dev --no-audit --no-fund --loglevel=error)
    fi
  done
  touch "$templates/.c3-$C3_VERSION-$TEMPLATES_REVISION"
fi
