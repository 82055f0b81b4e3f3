#!/usr/bin/env bash
# Installs what the Go interoperability test (tests/go_interop.rs) needs: Debian's Go 1.19 and
# HashiCorp go-plugin 1.0.1 with the dependencies its package metadata misses (shared/TOOLING.md).
# Idempotent: does nothing when every package is already installed. Needs root (apt-get).
set -euo pipefail

packages=(
  golang-go
  golang-github-hashicorp-go-plugin-dev
  golang-google-grpc-dev
  golang-github-golang-protobuf-1-3-dev
  golang-golang-x-net-dev
  golang-github-oklog-run-dev
  golang-github-mitchellh-go-testing-interface-dev
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "Go interop dependencies already installed"
  exit 0
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
