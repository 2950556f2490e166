# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): the images.
#
#   debootstrap -> rootfs tarball (cached) -> customize -> docker import
#
# The base tarballs are keyed by their package lists and trim_rootfs' text, the image tags
# by the text of customize_common, customize_IMAGE and its IMAGE_HELPERS (customize.sh,
# apt-repo.sh): editing one of those functions rebuilds the images it feeds. Building runs
# as root: `up.sh __build-base BASE` and `up.sh __build-image IMAGE` (run_internal).

# Trim a fresh debootstrap tree (runs as root).
trim_rootfs() {
    local R=$1
    rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* \
        "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/locale/*
    # host keys come from the state dir (ed25519) and from `ssh-keygen -A` at start
    rm -f "$R"/etc/ssh/ssh_host_*
}

base_key() { # base
    { echo "$BASE_VERSION $1 ${BASE_PACKAGES[$1]}"; declare -f trim_rootfs; } | short_hash
}
base_tarball() { echo "$CACHE_DIR/base-$1-$(base_key "$1").tar"; }

# The whole text of what builds an image goes into its tag.
image_tag() { # image
    local h
    h=$({
        echo "$IMAGE_VERSION $(base_key "${IMAGE_BASE[$1]}") $PW_PASSWORD"
        # shellcheck disable=SC2086
        declare -f customize_common "customize_$1" ${IMAGE_HELPERS[$1]}
    } | short_hash)
    echo "$IMAGE_REPO/$1:v$IMAGE_VERSION-$h"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Internal: `up.sh __build-base BASE` (as root). Writes the cached tarball.
build_base() {
    local base=$1 suite=${BASE_SUITE[$1]} out tmp mirror
    out=$(base_tarball "$base")
    [ -s "$out" ] && return 0
    mirror=$(detect_mirror)
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp -d "$CACHE_DIR/debootstrap-$base.XXXXXX")
    CLEANUPS+=("rm -rf --one-file-system '$tmp'")
    log "debootstrap $suite from $mirror (--include=${BASE_PACKAGES[$base]})"
    if ! debootstrap --variant=minbase --include="${BASE_PACKAGES[$base]}" \
        "$suite" "$tmp/root" "$mirror" </dev/null >"$tmp/log" 2>&1; then
        tail -n 20 "$tmp/log" >&2
        cp "$tmp/log" "$CACHE_DIR/debootstrap-$base.failed.log" 2>/dev/null || true
        die "debootstrap $suite from $mirror failed (log: $CACHE_DIR/debootstrap-$base.failed.log; set CHOPSTICKS_TESTHOSTS_MIRROR to another mirror)"
    fi
    trim_rootfs "$tmp/root"
    tar -C "$tmp/root" --numeric-owner -cf "$tmp/base.tar" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' .
    mv "$tmp/base.tar" "$out"
    # older tarballs of this base (the hash is 12 characters: not bookworm-git's for bookworm)
    find "$CACHE_DIR" -maxdepth 1 -name "base-$base-????????????.tar" ! -path "$out" -delete
    log "cached $out ($(du -h "$out" | cut -f1))"
}

# Internal: `up.sh __build-image IMAGE` (as root). Imports the image.
build_image() {
    local name=$1 tag tmp R
    tag=$(image_tag "$name")
    image_exists "$tag" && return 0
    local base
    base=$(base_tarball "${IMAGE_BASE[$name]}")
    [ -s "$base" ] || build_base "${IMAGE_BASE[$name]}"
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp -d "$CACHE_DIR/image-$name.XXXXXX")
    CLEANUPS+=("rm -rf --one-file-system '$tmp'")
    R=$tmp/root
    mkdir "$R"
    tar -C "$R" --numeric-owner -xpf "$base"
    customize_common "$R"
    "customize_$name" "$R"
    log "docker import $tag"
    tar -C "$R" --numeric-owner -cf - . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/usr/local/sbin/cs-entry"]' \
        --change 'LABEL chopsticks.testhosts=1' \
        --message "chopsticks test host $name" - "$tag" >/dev/null
}

run_internal() { # how to run `up.sh __xxx ARG` as root
    if is_root; then
        bash "$SELF" "$@"
    else
        as_root env CHOPSTICKS_TESTHOSTS_CACHE="$CACHE_DIR" CHOPSTICKS_TESTHOSTS_DIR="$STATE_DIR" \
            CHOPSTICKS_TESTHOSTS_MIRROR="${CHOPSTICKS_TESTHOSTS_MIRROR:-}" bash "$SELF" "$@"
    fi
}

ensure_images() {
    local missing=() img base
    for img in "${IMAGES[@]}"; do
        image_exists "$(image_tag "$img")" || missing+=("$img")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    log "building images: ${missing[*]}"
    if ! is_root && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
        die "building the test images (${missing[*]}) needs root for debootstrap and chroot: run tests/hosts/up.sh once as root or with passwordless sudo (later runs reuse the images), or set CHOPSTICKS_TESTHOSTS_DOCKER=0 for cs-local only"
    fi
    ensure_build_tools
    # debootstrap the missing bases in parallel (network bound)
    local -A want_base=()
    for img in "${missing[@]}"; do
        base=${IMAGE_BASE[$img]}
        [ -s "$(base_tarball "$base")" ] || want_base[$base]=1
    done
    local -A pids=()
    for base in "${!want_base[@]}"; do
        run_internal __build-base "$base" &
        pids[$base]=$!
    done
    for base in "${!pids[@]}"; do
        wait "${pids[$base]}" || die "building the $base base failed"
    done
    for img in "${missing[@]}"; do
        run_internal __build-image "$img" || die "building image $img failed"
    done
}

# Remove our images that no current tag points at (after the containers moved on).
prune_old_images() {
    local keep=() img ref
    for img in "${IMAGES[@]}"; do keep+=("$(image_tag "$img")"); done
    # this fleet's repository only: another fleet's images are not ours to prune
    docker images --format '{{.Repository}}:{{.Tag}}' --filter "label=chopsticks.testhosts=1" \
        --filter "reference=$IMAGE_REPO/*" 2>/dev/null |
        while read -r ref; do
            case " ${keep[*]} " in *" $ref "*) ;; *) docker image rm "$ref" >/dev/null 2>&1 || true ;; esac
        done
}
