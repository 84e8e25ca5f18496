#!/usr/bin/env bash
# Builds a Warden root-filesystem image (for `warden run --image DIR`) from a
# recipe, images/NAME/packages: a list of Debian packages installed with
# mmdebstrap on top of the Essential set, from the host's apt sources; and,
# optionally, images/NAME/extras: a bash fragment that adds what Debian does
# not package, from PyPI or the npm registry, each artifact pinned by
# version and SHA-256 (it is sourced with `root` set to the tree being built
# and the helpers npm_fetch and pip_fetch below).
#
#   scripts/build-image.sh NAME [IMAGES_DIR]
#
# IMAGES_DIR defaults to $WARDEN_IMAGES_DIR, else /var/cache/warden/images.
# The image lands in IMAGES_DIR/NAME with IMAGES_DIR/NAME/.warden-image.json
# describing it. Idempotent: if that file records the sha256 of the current
# recipe, nothing is done (WARDEN_IMAGE_FORCE=1 rebuilds anyway: for Debian's
# updates, or after a change to this script). The image is built in a
# temporary directory next to the target (same filesystem) and renamed into
# place in one step, so a reader sees the old image or the new one, never a
# half-built one. Runs as root.
set -euo pipefail
umask 022
export LC_ALL=C.UTF-8

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$SECONDS

die() { echo "build-image: $*" >&2; exit 1; }
phase() { printf 'build-image: [%3ss] %s\n' "$((SECONDS - start))" "$*"; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 NAME [IMAGES_DIR]"
name=$1
images_dir=${2:-${WARDEN_IMAGES_DIR:-/var/cache/warden/images}}
[[ $name =~ ^[a-z0-9][a-z0-9._-]*$ ]] || die "bad image name '$name'"
[[ $images_dir == /* ]] || die "IMAGES_DIR must be absolute: $images_dir"
recipe="$here/images/$name/packages"
[[ -f $recipe ]] || die "no recipe: $recipe"
target="$images_dir/$name"
meta="$target/.warden-image.json"

extras="$here/images/$name/extras"
# Both files (their names too, so moving a line between them counts).
recipe_sha=$(cd "$here/images/$name" &&
  for f in packages extras; do [[ -f $f ]] && printf '%s\n' "$f" && cat "$f"; done |
  sha256sum | cut -d' ' -f1)

# The recorded recipe hash, or nothing. The file is written by this script
# alone, one key a line, so a pattern match is enough (no JSON parser needed).
recorded_sha() {
  [[ -f $1 ]] && sed -n 's/^ *"recipe_sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$1" || true
}

# Is anything (a running sandbox) still bound to a directory below $1?
# Bind mounts record their source path in mountinfo's 4th field, which
# follows renames, so the unique temporary name finds them in any namespace.
in_use() {
  local base=/${1##*/}
  # cat fails on processes that exit meanwhile: only awk's verdict counts.
  { cat /proc/[0-9]*/mountinfo 2>/dev/null || true; } |
    awk -v b="$base" 'index($4 "/", b "/") { found = 1 } END { exit !found }'
}

# Removes a directory tree without crossing into anything mounted below it
# (mmdebstrap mounts /proc, /sys and device nodes in the chroot while it
# works; a crash could leave them behind).
remove_tree() {
  local dir=$1
  [[ -e $dir ]] || return 0
  awk -v d="$dir/" 'index($5 "/", d) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$dir"
}

# Removes images replaced by an earlier build while sandboxes still used
# them, once nothing does.
collect_old() {
  local old
  for old in "$images_dir/.$name.old."*; do
    if [[ -d $old ]] && ! in_use "$old"; then remove_tree "$old"; fi
  done
}

if [[ ${WARDEN_IMAGE_FORCE:-0} != 1 && $(recorded_sha "$meta") == "$recipe_sha" ]]; then
  if [[ $EUID -eq 0 ]]; then collect_old; fi
  echo "build-image: $name is up to date in $target (recipe sha256 ${recipe_sha:0:12})"
  exit 0
fi

[[ $EUID -eq 0 ]] || die "must run as root (mmdebstrap --mode=root)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (make deps)"

# Packages: one a line, '#' comments; plain Debian package names only.
pkgs=()
while read -r line; do
  read -r -a words <<<"${line%%#*}"
  for p in ${words[@]+"${words[@]}"}; do
    [[ $p =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "$recipe: bad package name '$p'"
    pkgs+=("$p")
  done
done <"$recipe"
[[ ${#pkgs[@]} -gt 0 ]] || die "$recipe lists no packages"

# The host's release and apt sources (every active file; override with
# WARDEN_IMAGE_SOURCES="file ..."), so the image gets the same archive, the
# same point release and security updates as the host itself.
# shellcheck disable=SC1091
suite=${WARDEN_IMAGE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}
[[ -n $suite ]] || die "cannot tell the host's Debian suite (set WARDEN_IMAGE_SUITE)"
sources=()
if [[ -n ${WARDEN_IMAGE_SOURCES:-} ]]; then
  read -r -a sources <<<"$WARDEN_IMAGE_SOURCES"
else
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && grep -qEv '^[[:space:]]*(#|$)' "$f" && sources+=("$f")
  done
fi
[[ ${#sources[@]} -gt 0 ]] || die "no apt sources found in /etc/apt"
# mmdebstrap runs apt with its own configuration: carry over the host's
# settings that decide whether the mirror is reachable and acceptable.
aptopts=()
for opt in Acquire::Check-Valid-Until Acquire::Check-Date Acquire::http::Proxy Acquire::https::Proxy; do
  v=""
  eval "$(apt-config shell v "$opt")"
  [[ -n $v ]] && aptopts+=("--aptopt=$opt \"$v\"")
done

mkdir -p "$images_dir"
chmod a+rx "$images_dir"
# A sandbox's init reads the image as an unprivileged host uid: every
# directory on the way must be searchable by others.
d=$images_dir
while [[ -n $d ]]; do
  [[ $(stat -c %A "$d/") == ?????????[xt] ]] ||
    echo "build-image: warning: $d/ is not searchable by others; sandboxes cannot use images below it" >&2
  d=${d%/*}
done

# One build of an image at a time; a second caller waits, then finds it done.
exec 9>"$images_dir/.$name.lock"
if ! flock -n 9; then
  phase "another build of $name is running; waiting for it"
  flock 9
  if [[ $(recorded_sha "$meta") == "$recipe_sha" ]]; then
    echo "build-image: $name is up to date in $target (built by the other run)"
    exit 0
  fi
fi
collect_old

tmp=$(mktemp -d "$images_dir/.$name.build.XXXXXX")
chmod 0755 "$tmp" # apt downloads as _apt into it
cleanup() {
  local rc=$?
  if [[ -n ${tmp:-} && -e $tmp ]]; then
    if ((rc != 0)); then echo "build-image: failed; removing $tmp" >&2; fi
    remove_tree "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "building $name (${#pkgs[@]} packages, Debian $suite) in $tmp"
phase "sources: ${sources[*]}"

# Never unpacked at all, which is faster than deleting afterwards: docs
# (except copyright notices), manuals, info pages, translations.
strip_paths=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/linda/*'
)

# variant essential: the Essential:yes set plus the recipe (hard dependencies
# only, never Recommends), installed by the host's apt from outside the
# chroot, so apt itself is not in the image.
# merged-usr hook: /bin, /lib... as symlinks made by mmdebstrap itself plus
# the empty usr-is-merged package, instead of the usrmerge package, which
# would pull the whole of perl into the image.
# force-unsafe-io: no fsync per file; a crash just means a rebuild.
phase "mmdebstrap: downloading and installing packages (this takes minutes)"
mmdebstrap \
  --mode=root --format=directory --variant=essential \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include="$(IFS=,; echo "${pkgs[*]}")" \
  --dpkgopt='force-unsafe-io' \
  "${strip_paths[@]}" \
  "${aptopts[@]}" \
  "$suite" "$tmp" "${sources[@]}"

# For extras: download (on the host, which reaches the registries) into
# $downloads, check the pinned hash, print the file's path.
check_sha() { # FILE SHA256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [[ $got == "$2" ]] || die "$1: sha256 $got, the recipe pins $2"
}
npm_fetch() { # PACKAGE VERSION SHA256-of-the-tarball
  local out
  out=$(cd "$downloads" && npm pack --silent "$1@$2" 2>/dev/null | tail -n1) ||
    die "npm pack $1@$2 failed"
  [[ -f $downloads/$out ]] || die "npm pack $1@$2 gave no tarball"
  check_sha "$downloads/$out" "$3"
  echo "$downloads/$out"
}
pip_fetch() { # DIST VERSION SHA256-of-the-wheel
  local dir="$downloads/pip-$1-$2" whl
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir" "$1==$2" ||
    die "pip download $1==$2 failed"
  whl=$(find "$dir" -name '*.whl' | head -n1)
  [[ -n $whl ]] || die "pip download $1==$2 gave no wheel"
  check_sha "$whl" "$3"
  echo "$whl"
}
if [[ -f $extras ]]; then
  phase "extras: $extras"
  # Inside the tree (removed with it on failure), so a step that runs in a
  # chroot finds a download at /${downloads#"$tmp"/}.
  downloads=$tmp/.warden-downloads
  mkdir -p "$downloads"
  root=$tmp
  # shellcheck disable=SC1090
  (set -euo pipefail; source "$extras")
  rm -rf "$downloads"
fi

phase "stripping what a sandbox does not need"
cd "$tmp"
# No apt in the image: its configuration, lists and caches go (this also
# drops any proxy setting carried over above). Logs and backups of the
# package database are build-time leftovers.
rm -rf etc/apt var/lib/apt var/cache/apt var/log/apt
find var/log -type f -delete
rm -f var/cache/debconf/*-old var/lib/dpkg/*-old
# Files mmdebstrap copied from the host (Warden writes its own per sandbox).
rm -f etc/hostname etc/resolv.conf etc/hosts
# Warden binds every entry of the image's /etc into every sandbox, one bind
# and one remount each (a bare Debian /etc has ~65 entries): drop what
# configures booting, services, logins, PAM, cron and package management,
# which nothing running inside a sandbox reads. For python-data that is 55
# mount calls per sandbox instead of 131. Kept: what programs do read
# (alternatives, ld.so.cache, fonts, localtime, mime.types, python3*,
# matplotlibrc, os-release, shell start-up files...). passwd and group stay
# for `chroot DIR` debugging; Warden ignores them and writes its own.
(cd etc && rm -rf X11 bindresvport.blacklist cron.* debconf.conf default dpkg \
  environment fstab gss init.d issue issue.net kernel ld.so.conf ld.so.conf.d \
  libaudit.conf login.defs logrotate.d modules-load.d motd netconfig opt \
  pam.conf pam.d rc?.d rcS.d rmt security selinux shells skel subgid subuid \
  sysctl.d systemd terminfo update-motd.d ./*-)
# Anything a maintainer script created in the excluded places.
find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf usr/share/man usr/share/info usr/share/lintian usr/share/linda
find usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
# Test suites shipped inside Python packages (pandas, numpy, sympy,
# matplotlib...: over 100 MB with their bytecode). Only their own test
# runners import them (openpyxl's optional `..tests` import is guarded).
# Removed here, not excluded from unpacking: py3compile, run when the
# packages are configured, fails on listed files that are missing.
find usr/lib/python3/dist-packages -mindepth 2 -type d -name tests -prune -exec rm -rf {} +
# Set-uid/gid bits are inert under Warden's nosuid binds; drop them anyway,
# in case the tree is ever used some other way.
find . -xdev -type f -perm /6000 -exec chmod ug-s {} +
# Warden mounts its own /dev, /proc, /sys, /tmp and /run; leave them empty.
find dev proc sys tmp run -mindepth 1 -delete
# Every top-level directory becomes one more bind mount in every sandbox:
# drop the ones that are empty by design.
for d in boot media mnt opt srv; do
  [[ -d $d ]] && rmdir "$d" 2>/dev/null || true
done
# Warden binds the image's /var read-only: point /var/tmp at the sandbox's
# writable /tmp, as programs expect to be able to write there.
rm -rf var/tmp && ln -s ../tmp var/tmp
# No display in a sandbox: make matplotlib's default backend Agg (Debian
# sets TkAgg; matplotlib would fall back to Agg itself, after trying Tk).
if [[ -f etc/matplotlibrc ]]; then
  sed -i 's/^#\{0,1\} *backend *:.*/backend: Agg/' etc/matplotlibrc
  grep -q '^backend: Agg' etc/matplotlibrc || echo 'backend: Agg' >>etc/matplotlibrc
fi
chmod 0755 "$tmp"
cd "$here"

phase "recording metadata"
dpkg_q() { dpkg-query --admindir="$tmp/var/lib/dpkg" -W -f="$1"; }
# Installed packages only (status "install ok installed"), sorted by name.
installed=$(dpkg_q '${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n' |
  awk -F'\t' '$1 ~ /^ii/ { print $2 "\t" $3 "\t" $4 }' | sort)
npkgs=$(wc -l <<<"$installed")
# content_sha256 names what is in the image, not when it was built: the
# recipe hash plus the sorted (package, version, architecture) list of
# everything installed. Two builds from the same recipe against the same
# archive state get the same digest; a point release or security update that
# changes any package changes it. A digest of the file tree itself would not
# do: a rebuild of identical packages differs in timestamps and generated
# files (shadow's change date, debconf caches), so it would never repeat.
# What this script adds or strips is the same for every build and not hashed.
content_sha=$(printf 'recipe %s\n%s\n' "$recipe_sha" "$installed" | sha256sum | cut -d' ' -f1)
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
  printf '{\n'
  printf '  "name": "%s",\n' "$name"
  printf '  "recipe_sha256": "%s",\n' "$recipe_sha"
  printf '  "built_at": "%s",\n' "$built_at"
  printf '  "debian_suite": "%s",\n' "$suite"
  printf '  "content_sha256": "%s",\n' "$content_sha"
  printf '  "packages": {\n'
  # Debian names and versions never contain quotes or backslashes.
  awk -F'\t' -v n="$npkgs" '{ printf "    \"%s\": \"%s\"%s\n", $1, $2, (NR < n ? "," : "") }' <<<"$installed"
  printf '  }\n}\n'
} >"$tmp/.warden-image.json"
chmod 0644 "$tmp/.warden-image.json"

phase "installing into $target"
if [[ ! -e $target ]]; then
  mv -T "$tmp" "$target"
  tmp=""
else
  # Swap old and new in one rename (renameat2 RENAME_EXCHANGE): no moment
  # without an image. $tmp then holds the old image.
  python3 - "$tmp" "$target" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, os.fsencode(sys.argv[1]), AT_FDCWD,
                  os.fsencode(sys.argv[2]), RENAME_EXCHANGE) != 0:
    sys.exit("build-image: renameat2: " + os.strerror(ctypes.get_errno()))
EOF
  if in_use "$tmp"; then
    # Running sandboxes read the old tree through their bind mounts:
    # deleting it now would pull files from under them. The next run of
    # this script (even a no-op one) removes it once nothing uses it.
    old="$images_dir/.$name.old.${tmp##*.}"
    mv -T "$tmp" "$old"
    tmp=""
    phase "previous image still in use by running sandboxes; kept as $old"
  else
    remove_tree "$tmp"
    tmp=""
  fi
fi

size=$(du -sh "$target" | cut -f1)
files=$(find "$target" -xdev | wc -l)
phase "done: $target, $size on disk, $files files, $npkgs packages, content sha256 ${content_sha:0:12}"
