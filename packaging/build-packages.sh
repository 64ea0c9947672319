#!/usr/bin/env bash
# Builds ELSE's packages into target/packages/: else-server and else-postfix-agent, each as .deb
# (dpkg-deb) and .rpm (rpmbuild, Debian package `rpm`). `make packages` runs it.
#
# The binaries come from one `cargo build --release` (omelse.so, elsed, else-pfagent); the packages are assembled from the files under packaging/ by the distributions'
# own tools, so no packaging tool has to be compiled. The version is the workspace's.
#
#   packaging/build-packages.sh              # build, then package
#   packaging/build-packages.sh --no-build   # package what target/release already holds
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/packages
release=$root/target/release
work=$root/target/packaging

say() { printf 'build-packages: %s\n' "$*"; }
die() { say "error: $*" >&2; exit 1; }

for tool in dpkg-deb rpmbuild help2man objdump strip; do
    command -v "$tool" >/dev/null || die "$tool not found (make setup installs it)"
done

version=$(awk '/^\[workspace\.package\]/ { section = 1; next }
               /^\[/ { section = 0 }
               section && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
[[ -n "$version" ]] || die "no version in [workspace.package] of Cargo.toml"

# Run from `cargo test` (tests/tests/packages.rs), the environment holds the test crate's
# CARGO_PKG_*/CARGO_MANIFEST_* variables; build scripts (ring's) watch them, so they would make
# this build differ from one run by hand and recompile everything each time.
for variable in $(compgen -e); do
    case $variable in
    CARGO_PKG_* | CARGO_MANIFEST_* | CARGO_CRATE_NAME | CARGO_BIN_* | CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | OUT_DIR)
        unset "$variable" ;;
    esac
done

if [[ "${1:-}" != "--no-build" ]]; then
    say "cargo build --release (omelse.so, elsed, else-pfagent)"
    # One invocation: features unified once, so a second run has nothing to rebuild.
    cargo build --release -p omelse -p elsed -p else-pfagent
fi
for file in libomelse.so elsed else-pfagent; do
    [[ -f "$release/$file" ]] || die "$release/$file missing: run without --no-build"
done

# The systemd units: one hardened template, one line each (unit | what | command).
UNITS=(
    "else-elsed.service|web application and JSON API|/usr/bin/elsed serve"
    "else-greylist.service|GreyLSE greylisting policy service|/usr/bin/elsed greylist"
    "else-ndr.service|NDR collector (LMTP/SMTP)|/usr/bin/elsed ndr"
    "else-maintain.service|housekeeping: retention, rollups, expired greylisting state|/usr/bin/elsed maintain --every 300"
    "else-snmp-poll.service|SNMP poller of the Postfix hosts' queues|/usr/bin/elsed snmp poll"
)
unit_names=$(for u in "${UNITS[@]}"; do printf '%s ' "${u%%|*}"; done)
unit_names=${unit_names% }

# install MODE SRC DEST: copies a file, making the directories.
put() { install -D -m "$1" "$2" "$3"; }

# The binaries without their debug information (the release profile keeps it for backtraces).
stripped() { strip --strip-debug -o "$2" "$1"; chmod 0755 "$2"; }

# Stages the else-server tree under $1 with rsyslog's module directory $2 and systemd's $3.
stage_server() {
    local dest=$1 moddir=$2 unitdir=$3 doc=$1/usr/share/doc/else-server
    stripped "$release/elsed" "$work/elsed" && put 0755 "$work/elsed" "$dest/usr/bin/elsed"
    stripped "$release/libomelse.so" "$work/omelse.so" && put 0755 "$work/omelse.so" "$dest$moddir/omelse.so"
    for entry in "${UNITS[@]}"; do
        IFS='|' read -r unit description command <<<"$entry"
        mkdir -p "$dest$unitdir"
        sed -e "s|@UNIT@|$unit|g" -e "s|@DESCRIPTION@|$description|g" -e "s|@COMMAND@|$command|g" \
            packaging/systemd/else-unit.service.in >"$dest$unitdir/$unit"
        chmod 0644 "$dest$unitdir/$unit"
    done
    put 0640 packaging/elsed.toml "$dest/etc/else/elsed.toml"
    put 0644 rsyslog-conf/else-server.conf "$dest/etc/rsyslog.d/else-server.conf.disabled"
    put 0644 rsyslog-conf/else-server-compressed.conf "$dest/etc/rsyslog.d/else-server-compressed.conf.disabled"
    put 0644 rsyslog-conf/else-ssh-tunnel.conf "$dest/etc/rsyslog.d/else-ssh-tunnel.conf.disabled"
    put 0644 packaging/ssh/else-tunnel.conf "$doc/examples/ssh/else-tunnel.conf"
    put 0644 packaging/nftables/else-relp.nft "$doc/examples/nftables/else-relp.nft"
    put 0644 docs/install.md "$doc/install.md"
    put 0644 docs/transport.md "$doc/transport.md"
    put 0644 docs/configuration.md "$doc/configuration.md"
    put 0644 README.md "$doc/README.md"
    copyright "$doc/copyright"
    mkdir -p "$dest/usr/share/man/man1"
    gzip -9n <"$work/elsed.1" >"$dest/usr/share/man/man1/elsed.1.gz"
    chmod 0644 "$dest/usr/share/man/man1/elsed.1.gz"
}

# Stages the else-postfix-agent tree under $1.
stage_agent() {
    local dest=$1 doc=$1/usr/share/doc/else-postfix-agent
    stripped "$release/else-pfagent" "$work/else-pfagent"
    put 0755 "$work/else-pfagent" "$dest/usr/bin/else-pfagent"
    # One of these is enabled: RELP/TLS, Postfix's own log file, compressed, two receivers, or
    # RELP through an SSH tunnel (its unit in examples/postfix-host/ssh-tunnel/).
    local stanza
    for stanza in postfix-host postfix-host-maillog postfix-host-compressed postfix-host-failover postfix-host-ssh-tunnel; do
        put 0644 "rsyslog-conf/$stanza.conf" "$dest/etc/rsyslog.d/else-$stanza.conf.disabled"
    done
    put 0644 packaging/else-postfix-agent.README "$doc/README"
    copyright "$doc/copyright"
    mkdir -p "$doc/examples"
    cp -r packaging/postfix "$doc/examples/postfix"
    if [[ -d packaging/postfix-host ]]; then
        cp -r packaging/postfix-host "$doc/examples/postfix-host"
    else
        say "WARNING: packaging/postfix-host/ (snmpd snippet, sudoers file) missing: not in the package"
    fi
    find "$doc" -type d -exec chmod 0755 {} + && find "$doc" -type f -exec chmod 0644 {} +
}

copyright() {
    mkdir -p "$(dirname "$1")"
    printf 'ELSE\nCopyright: the ELSE developers\nLicense: Apache-2.0\n  On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n' >"$1"
    chmod 0644 "$1"
}

# The ELF files of a tree.
elf_files() {
    find "$1" -type f \( -name '*.so' -o -perm -0100 \) -exec sh -c 'head -c4 "$1" | grep -q ELF && echo "$1"' _ {} \;
}

# The newest glibc symbol version the ELF files of a tree use (2.17 when there are none).
glibc_min() {
    local f
    { echo GLIBC_2.17; for f in $(elf_files "$1"); do objdump -T "$f"; done; } |
        grep -o 'GLIBC_[0-9.]*[0-9]' | sed 's/GLIBC_//' | sort -uV | tail -1
}

# Depends for the ELF files of a tree: libc6 of the newest glibc symbol version they use, plus
# libgcc-s1 when they link libgcc_s (Rust's unwinder).
shlib_depends() {
    local files deps
    files=$(elf_files "$1")
    deps="libc6 (>= $(glibc_min "$1"))"
    # grep reads everything (not -q): with pipefail, objdump's SIGPIPE would read as "no".
    if for f in $files; do objdump -p "$f"; done | grep 'NEEDED.*libgcc_s' >/dev/null; then
        deps="$deps, libgcc-s1"
    fi
    printf '%s' "$deps"
}

# Builds the .deb of package $1 from the staged tree $2.
build_deb() {
    local name=$1 tree=$2 arch size
    arch=$(dpkg --print-architecture)
    mkdir -p "$tree/DEBIAN"
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    sed -e "s|@VERSION@|$version|" -e "s|@DEB_ARCH@|$arch|" -e "s|@INSTALLED_SIZE@|$size|" \
        -e "s|@SHLIB_DEPENDS@|$(shlib_depends "$tree")|" \
        "packaging/deb/$name/control" >"$tree/DEBIAN/control"
    for script in postinst prerm postrm; do
        if [[ -f "packaging/deb/$name/$script" ]]; then
            sed "s|@UNITS@|$unit_names|" "packaging/deb/$name/$script" >"$tree/DEBIAN/$script"
            chmod 0755 "$tree/DEBIAN/$script"
        fi
    done
    cp "packaging/deb/$name/conffiles" "$tree/DEBIAN/conffiles"
    (cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$tree/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$tree" "$out/${name}_${version}_${arch}.deb" >/dev/null
    say "built target/packages/${name}_${version}_${arch}.deb"
}

# Builds the .rpm of package $1 from the staged tree $2.
build_rpm() {
    local name=$1 tree=$2
    rpmbuild -bb --quiet \
        --define "_topdir $work/rpmbuild" \
        --define "_rpmdir $out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "stage $tree" \
        --define "version $version" \
        --define "glibc_min $(glibc_min "$tree")" \
        --define "_binary_payload w6.xzdio" \
        "packaging/rpm/$name.spec" >/dev/null
    say "built target/packages/$name-$version-1.x86_64.rpm"
}

rm -rf "$work" && mkdir -p "$work" "$out"
rm -f "$out"/else-server[_-]* "$out"/else-postfix-agent[_-]*

# The man page: elsed --help and each subcommand's, in one page.
{
    printf '[SUBCOMMANDS]\n'
    "$release/elsed" --help | awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && $1 != "help" { print $1 }' |
        while read -r sub; do
            printf '.SS "elsed %s"\n.nf\n' "$sub"
            "$release/elsed" "$sub" --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
            printf '.fi\n'
        done
    printf '[FILES]\n/etc/else/elsed.toml: the configuration (see /usr/share/doc/else-server/configuration.md).\n'
} >"$work/elsed.include"
help2man --no-info --no-discard-stderr --section 1 --name "ELSE daemon and command line" \
    --include "$work/elsed.include" --version-string "$version" -o "$work/elsed.1" "$release/elsed"

stage_server "$work/else-server-deb" "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/rsyslog" /lib/systemd/system
build_deb else-server "$work/else-server-deb"
stage_server "$work/else-server-rpm" /usr/lib64/rsyslog /usr/lib/systemd/system
build_rpm else-server "$work/else-server-rpm"

stage_agent "$work/else-postfix-agent-deb"
build_deb else-postfix-agent "$work/else-postfix-agent-deb"
stage_agent "$work/else-postfix-agent-rpm"
build_rpm else-postfix-agent "$work/else-postfix-agent-rpm"

say "done: $(cd "$out" && ls else-server[_-]* else-postfix-agent[_-]* | tr '\n' ' ')"
