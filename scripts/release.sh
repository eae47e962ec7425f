#!/usr/bin/env bash
# Builds the release (docs/install.md) into dist/release/ from the bundle in dist/ (`make
# release` runs scripts/build.sh first):
#   kahets_<version>_<arch>.deb          for Debian and Ubuntu, built with dpkg-deb
#   kahets-<version>-linux-<arch>.tar.gz the same /usr/lib/kahets tree, for hosts without dpkg
# Both carry the pinned Node.js (scripts/node.sh) and production node_modules only: nothing
# on the host needs Node, npm, esbuild, tsx or TypeScript.
#
# Usage: scripts/release.sh
#
# Environment (all optional):
#   DEB_MAINTAINER  the .deb's Maintainer field   default "kahets maintainers <kahets@example.org>"
#   SOURCE_DATE_EPOCH  timestamps inside both files   default the last commit's time
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"

log() { printf 'release.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in dpkg-deb npm strip; do
  command -v "$tool" >/dev/null || die "$tool not found (.ci/run installs it)"
done
[[ -f dist/kahets.js ]] || die "no dist/kahets.js: run make build first"

# The release always carries the pinned Node, whatever NODE_VERSION this shell tries.
unset NODE_VERSION
arch=$(dpkg --print-architecture)
case $arch in
  amd64) node_arch=x64 ;;
  arm64) node_arch=arm64 ;;
  *) die "no pinned Node.js for $arch" ;;
esac
NODE_ARCH=$node_arch scripts/node.sh fetch
node_dir=$(NODE_ARCH=$node_arch scripts/node.sh dir)
node=$node_dir/bin/node
version=$("$node" -p 'require("./package.json").version')
maintainer=${DEB_MAINTAINER:-kahets maintainers <kahets@example.org>}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

out=$root/dist/release
stage=$(mktemp -d "$root/dist/release.tmp.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/deb
app=$pkg/usr/lib/kahets

# ---------------------------------------------------------------- /usr/lib/kahets
mkdir -p "$app/bin" "$app/dist" "$app/config" "$app/node/bin"
cp package.json package-lock.json "$app/"
cp -r dist/kahets.js dist/kahets.js.map dist/chunks "$app/dist/"
cp bin/kahets "$app/bin/"
cp config/buckets.schema.json "$app/config/"
# Production packages only, from the lock file; under the pinned Node so native packages
# resolve for it. No scripts: none of kahets's dependencies needs one (package.json allowScripts).
(cd "$app" && PATH="$node_dir/bin:$PATH" npm ci --omit=dev --ignore-scripts --prefer-offline \
  --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/package-lock.json" "$app/node_modules/.package-lock.json"
# What a Debian package must not carry (lintian): the packages' own tooling files, their
# command-line scripts (kahets runs none; their `#!/usr/bin/env node` would want a nodejs
# package), executable bits on data, and koffi's musl build, which a glibc system never loads.
nm=$app/node_modules
rm -rf "$nm/.bin"
find "$nm" \( -name '.eslintrc*' -o -name '.npmignore' -o -name '.gitattributes' -o -name '.github' \
  -o -name '.editorconfig' -o -name '.travis.yml' \) -prune -exec rm -rf {} +
find "$nm" -type d -path '*/koffi-linux-*/musl_*' -prune -exec rm -rf {} +
find "$nm" -type f -exec chmod a-x {} +
for dev in esbuild tsx typescript; do
  [[ ! -e $app/node_modules/$dev ]] || die "$dev landed in the production node_modules"
done
# Stripped as Debian strips binaries (dh_strip): the symbol-less binary is 117 MB, not 150 MB.
cp "$node" "$app/node/bin/node"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$app/node/bin/node"
cp "$node_dir/LICENSE" "$app/node/LICENSE"
find "$app/node_modules" -name '*.node' -type f -exec strip --strip-unneeded {} +
"$app/node/bin/node" --version >/dev/null || die "the stripped node does not run"

# ---------------------------------------------------------------- the rest of the .deb tree
mkdir -p "$pkg/usr/bin" "$pkg/etc/kahets" "$pkg/lib/systemd/system" "$pkg/var/lib/kahets" \
  "$pkg/usr/share/doc/kahets" "$pkg/usr/share/kahets/clients" "$pkg/DEBIAN"
ln -s ../lib/kahets/bin/kahets "$pkg/usr/bin/kahets"
cp deploy/kahets.env deploy/buckets.json "$pkg/etc/kahets/"
[[ -f deploy/systemd/kahets.service ]] || die "deploy/systemd/kahets.service is missing"
for unit in deploy/systemd/*.service deploy/systemd/*.socket; do
  [[ -f $unit ]] && cp "$unit" "$pkg/lib/systemd/system/"
done
cp -r clients/php "$pkg/usr/share/kahets/clients/"
cp docs/install.md "$pkg/usr/share/doc/kahets/"
cp deploy/debian/copyright "$pkg/usr/share/doc/kahets/"
install -D -m 0644 deploy/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/kahets"
date_rfc2822=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
sed -e "s/@VERSION@/$version/; s/@MAINTAINER@/$maintainer/; s/@DATE@/$date_rfc2822/" \
  deploy/debian/changelog | gzip -9n >"$pkg/usr/share/doc/kahets/changelog.gz"
# man kahets: the --help text (health's --help per command may make it longer), as Debian
# wants a manual page for every command in /usr/bin.
mkdir -p "$pkg/usr/share/man/man1"
{
  printf '.TH KAHETS 1 "%s" "kahets %s" "User Commands"\n' "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" "$version"
  printf '.SH NAME\nkahets \\- local batching sidecar for Apache Kafka\n.SH SYNOPSIS\n'
  printf '.B kahets\n[\\fICOMMAND\\fR] [\\fIARGS\\fR...] [\\fIOPTIONS\\fR]\n.SH DESCRIPTION\n.nf\n'
  # Text as it is: backslashes doubled, and a line may not start with a control character.
  "$app/bin/kahets" --help | sed -e 's/\\/\\\\/g' -e "s/^[.']/\\\\\&&/"
  printf '.fi\n.SH FILES\n/etc/kahets/kahets.env, /etc/kahets/buckets.json, /var/lib/kahets\n'
  printf '.SH SEE ALSO\n/usr/share/doc/kahets/install.md\n'
} | gzip -9n >"$pkg/usr/share/man/man1/kahets.1.gz"
chmod -R u=rwX,go=rX "$pkg"

cp deploy/debian/conffiles "$pkg/DEBIAN/"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$pkg/DEBIAN/"
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/; s/@ARCH@/$arch/; s/@MAINTAINER@/$maintainer/; s/@INSTALLED_SIZE@/$installed_size/" \
  deploy/debian/control >"$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

mkdir -p "$out"
deb=kahets_${version}_${arch}.deb
tarball=kahets-$version-linux-$node_arch.tar.gz
# root:root whichever user builds. gzip, not dpkg-deb's default xz: xz took 63 s of CPU for the
# Node binary alone against gzip's 6 s (28 MB against 42 MB), and make test builds this; every
# dpkg reads gzip.
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$stage/$deb" >/dev/null

# ---------------------------------------------------------------- tarball
# The /usr/lib/kahets tree under kahets-<version>-linux-<arch>/, plus what the .deb puts
# elsewhere: etc/ (to copy to /etc/kahets/), systemd/ (units expecting /usr/bin/kahets), and
# share/ (the PHP client, this guide).
top=$stage/tar/kahets-$version-linux-$node_arch
mkdir -p "$top"
cp -a "$app/." "$top/"
cp -a "$pkg/etc/kahets" "$top/etc"
cp -a "$pkg/lib/systemd/system" "$top/systemd"
mkdir -p "$top/share"
cp -a "$pkg/usr/share/kahets/clients" "$pkg/usr/share/doc/kahets/install.md" "$pkg/usr/share/doc/kahets/copyright" "$top/share/"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$stage/tar" -czf "$stage/$tarball" "kahets-$version-linux-$node_arch"

mv -f "$stage/$deb" "$stage/$tarball" "$out/"
log "wrote $out/$deb ($(du -h "$out/$deb" | cut -f1)) and $out/$tarball ($(du -h "$out/$tarball" | cut -f1))"
