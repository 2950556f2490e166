# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): the apt repository baked into
# the deb12 and systemd images (customize.sh), with packages built on this machine. These
# functions are IMAGE_HELPERS of those images: their text is part of the images' tags.

# make_deb ROOT NAME VERSION DEPENDS: a tiny package into ROOT/srv/cs-repo, built with
# this machine's dpkg-deb. cs-hello is a daemon with a systemd unit (and an LSB init script
# for hosts without systemd) that logs each start
# (and reload) with its config to /var/log/cs-hello.log; cs-tool is a command that needs it.
make_deb() {
    local R=$1 name=$2 version=$3 depends=$4 tree
    tree=$(mktemp -d)
    install -d -m 755 "$tree/DEBIAN" "$tree/usr/bin"
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: all"
        echo "Maintainer: chopsticks tests <tests@localhost>"
        [ -z "$depends" ] || echo "Depends: $depends"
        echo "Description: chopsticks test package $name"
        echo " Made by tests/hosts/up.sh for the package and service operations."
    } >"$tree/DEBIAN/control"
    case $name in
    cs-hello)
        install -d -m 755 "$tree/lib/systemd/system"
        cat >"$tree/usr/bin/cs-hello" <<EOF
#!/bin/sh
# cs-hello $version: logs each start and reload with its config, then waits.
log() { echo "\$(date +%s) \$1 version=$version config=\$(tr '\\n' ' ' </etc/cs-hello.conf 2>/dev/null)" >>/var/log/cs-hello.log; }
trap 'log reload' HUP
trap 'exit 0' TERM
log start
while :; do sleep 1 & wait \$!; done
EOF
        # an LSB init script too, for hosts without systemd (where systemd runs, its unit wins)
        install -d -m 755 "$tree/etc/init.d"
        cat >"$tree/etc/init.d/cs-hello" <<'EOF'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          cs-hello
# Required-Start:    $local_fs
# Required-Stop:     $local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: chopsticks test daemon
### END INIT INFO
# start-stop-daemon with a pidfile and the process name; reload is a HUP (the daemon logs it).
PIDFILE=/run/cs-hello.pid
ssd() { start-stop-daemon --quiet --pidfile "$PIDFILE" --name cs-hello "$@"; }
case "$1" in
start) ssd --start --oknodo --background --make-pidfile --startas /usr/bin/cs-hello ;;
stop) ssd --stop --oknodo --retry TERM/5/KILL/2 --remove-pidfile ;;
restart | force-reload)
    ssd --stop --oknodo --retry TERM/5/KILL/2 --remove-pidfile
    ssd --start --oknodo --background --make-pidfile --startas /usr/bin/cs-hello
    ;;
reload) ssd --stop --signal HUP ;;
status) ssd --status ;;
*)
    echo "Usage: /etc/init.d/cs-hello {start|stop|restart|force-reload|reload|status}" >&2
    exit 3
    ;;
esac
EOF
        chmod 755 "$tree/etc/init.d/cs-hello"
        cat >"$tree/lib/systemd/system/cs-hello.service" <<'EOF'
[Unit]
Description=chopsticks test daemon

[Service]
ExecStart=/usr/bin/cs-hello
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
EOF
        ;;
    *)
        printf '#!/bin/sh\necho "%s %s"\n' "$name" "$version" >"$tree/usr/bin/$name"
        ;;
    esac
    chmod 755 "$tree/usr/bin/$name"
    dpkg-deb -Zgzip --root-owner-group --build "$tree" "$R/srv/cs-repo/${name}_${version}_all.deb" >/dev/null
    rm -rf "$tree"
}

# An apt repository in the image, /srv/cs-repo, as its only source (the test network
# reaches no mirror): cs-hello 1.0 and 1.1, cs-tool 1.0 (depends on cs-hello). The
# package lists are fetched at build time, so apt knows them without `apt-get update`.
local_apt_repo() {
    local R=$1 deb
    install -d -m 755 "$R/srv/cs-repo"
    make_deb "$R" cs-hello 1.0 ""
    make_deb "$R" cs-hello 1.1 ""
    make_deb "$R" cs-tool 1.0 cs-hello
    for deb in "$R"/srv/cs-repo/*.deb; do
        dpkg-deb -f "$deb"
        echo "Filename: ./${deb##*/}"
        echo "Size: $(stat -c %s "$deb")"
        echo "SHA256: $(sha256sum <"$deb" | cut -d' ' -f1)"
        echo
    done >"$R/srv/cs-repo/Packages"
    rm -f "$R/etc/apt/sources.list" "$R"/etc/apt/sources.list.d/*
    echo 'deb [trusted=yes] file:/srv/cs-repo ./' >"$R/etc/apt/sources.list.d/cs-repo.list"
    chroot "$R" apt-get update -q </dev/null >/dev/null
}

# A signed apt repository in the image, /srv/cs-signed, and NOT among its sources (the tests
# of ops::apt_repository add it): cs-signed-hello 1.0 in a flat repository (suite ./) whose
# InRelease is signed (gpg --clearsign) with a key made here at build time. Beside it, as a
# user would have fetched a vendor's key: key.asc (armored) and key.gpg (binary) of that key,
# and wrong-key.asc, a key that did not sign it.
signed_apt_repo() {
    local R=$1 repo=$1/srv/cs-signed f
    install -d -m 755 "$R/srv/cs-repo" "$repo"
    make_deb "$R" cs-signed-hello 1.0 ""
    mv "$R/srv/cs-repo/cs-signed-hello_1.0_all.deb" "$repo/"
    f=$repo/cs-signed-hello_1.0_all.deb
    {
        dpkg-deb -f "$f"
        echo "Filename: ./${f##*/}"
        echo "Size: $(stat -c %s "$f")"
        echo "SHA256: $(sha256sum <"$f" | cut -d' ' -f1)"
    } >"$repo/Packages"
    gzip -9nk "$repo/Packages"
    {
        echo "Origin: chopsticks tests"
        echo "Label: cs-signed"
        echo "Date: $(LC_ALL=C date -Ru)"
        echo "SHA256:"
        for f in Packages Packages.gz; do
            echo " $(sha256sum <"$repo/$f" | cut -d' ' -f1) $(stat -c %s "$repo/$f") $f"
        done
    } >"$repo/Release"
    # In a subshell whose exit stops the agent and removes the keys, whatever fails.
    (
        GNUPGHOME=$(mktemp -d)
        export GNUPGHOME
        trap 'gpgconf --kill all; rm -rf "$GNUPGHOME"' EXIT
        g=(gpg --batch --quiet --no-tty)
        "${g[@]}" --passphrase '' --quick-gen-key 'chopsticks tests signed repo <signed@localhost>' ed25519 sign never
        "${g[@]}" --passphrase '' --quick-gen-key 'chopsticks tests other key <other@localhost>' ed25519 sign never
        "${g[@]}" --local-user signed@localhost --clearsign -o "$repo/InRelease" "$repo/Release"
        "${g[@]}" --armor --export signed@localhost >"$repo/key.asc"
        "${g[@]}" --export signed@localhost >"$repo/key.gpg"
        "${g[@]}" --armor --export other@localhost >"$repo/wrong-key.asc"
    )
    chmod 644 "$repo"/*
}
