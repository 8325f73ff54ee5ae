#!/bin/sh
# Installs the mold linker that .cargo/config.toml asks for.
set -eu
if command -v mold >/dev/null; then exit 0; fi
if command -v apt-get >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing mold (the linker .cargo/config.toml uses)..."
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq mold
else
  echo "mold is not installed: install it with your package manager (it links V8 in seconds)" >&2
  exit 1
fi
