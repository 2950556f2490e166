# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): the rpm repository baked into
# the dnf image (customize.sh), with packages built on this machine by rpmbuild and indexed
# by createrepo_c (Debian's `rpm` and `createrepo-c`, installed when missing). These
# functions are IMAGE_HELPERS of that image: their text is part of its tag.

# make_rpm ROOT NAME VERSION REQUIRES: a tiny noarch package into ROOT/srv/cs-rpms, built
# with this machine's rpmbuild: a command NAME that prints its name and version (as the
# deb ones of apt-repo.sh do); cs-tool requires cs-hello.
make_rpm() {
    local R=$1 name=$2 version=$3 requires=$4 top
    top=$(mktemp -d)
    install -d -m 755 "$top/SPECS"
    {
        echo "Name: $name"
        echo "Version: $version"
        echo "Release: 1"
        echo "Summary: chopsticks test package $name"
        echo "License: MIT"
        echo "BuildArch: noarch"
        # no automatic requirements (the scripts would need /bin/sh, which no rpm provides here)
        echo "AutoReqProv: no"
        [ -z "$requires" ] || echo "Requires: $requires"
        echo "%description"
        echo "Made by tests/hosts/up.sh for the package operation's dnf tests."
        echo "%install"
        echo "install -d -m 755 %{buildroot}/usr/bin"
        echo "cat >%{buildroot}/usr/bin/$name <<'EOF'"
        echo '#!/bin/sh'
        echo "echo \"$name $version\""
        echo 'EOF'
        echo "chmod 755 %{buildroot}/usr/bin/$name"
        echo "%files"
        echo "/usr/bin/$name"
    } >"$top/SPECS/$name.spec"
    rpmbuild --quiet -bb --define "_topdir $top" --define '_build_id_links none' \
        --define 'debug_package %{nil}' --define '_binary_payload w9.gzdio' \
        "$top/SPECS/$name.spec" </dev/null >/dev/null
    install -m 644 "$top/RPMS/noarch/$name-$version-1.noarch.rpm" "$R/srv/cs-rpms/"
    rm -rf "$top"
}

# An rpm repository in the image, /srv/cs-rpms, as dnf's only one (the test network reaches
# no mirror): cs-hello 1.0 and 1.1, cs-tool 1.0 (requires cs-hello). The release version is
# set (there is no system-release package), and the metadata is cached at build time, so dnf
# knows the packages without `dnf makecache`.
local_rpm_repo() {
    local R=$1
    command -v rpmbuild >/dev/null 2>&1 || install_pkgs rpm
    command -v createrepo_c >/dev/null 2>&1 || install_pkgs createrepo-c
    install -d -m 755 "$R/srv/cs-rpms"
    make_rpm "$R" cs-hello 1.0 ""
    make_rpm "$R" cs-hello 1.1 ""
    make_rpm "$R" cs-tool 1.0 cs-hello
    createrepo_c --quiet "$R/srv/cs-rpms" >/dev/null
    install -d -m 755 "$R/etc/yum.repos.d" "$R/etc/dnf/vars"
    rm -f "$R"/etc/yum.repos.d/*.repo
    printf '%s\n' '[cs-rpms]' 'name=chopsticks test rpms' 'baseurl=file:///srv/cs-rpms' \
        'enabled=1' 'gpgcheck=0' 'repo_gpgcheck=0' >"$R/etc/yum.repos.d/cs-rpms.repo"
    echo 12 >"$R/etc/dnf/vars/releasever"
    # Debian's rpm keeps its database in ~/.rpmdb (%_dbpath): rpm run with another HOME (sudo,
    # su, a service) would see none. The system's place, as on rpm's own distributions:
    install -d -m 755 "$R/etc/rpm"
    echo '%_dbpath /var/lib/rpm' >"$R/etc/rpm/macros.dbpath"
    [ "$(chroot "$R" env HOME=/nonexistent rpm --eval %_dbpath)" = /var/lib/rpm ] ||
        die "rpm in the dnf image does not take /etc/rpm/macros.dbpath"
    chroot "$R" rpm --initdb
    chroot "$R" dnf -q makecache </dev/null >/dev/null
}
