# edgenvr has no public homepage or bug tracker yet: set HOMEPAGE and BUGTRACKER when the
# repository is published. It runs on the target only, so no native/nativesdk variants.
SUMMARY = "edgenvr network video recorder"
DESCRIPTION = "Records RTSP and local cameras into per-minute chunk files with an SQLite \
               index, reaps old footage to keep disks from filling, and serves an HTTP API \
               with MP4 export."
SECTION = "multimedia"
CVE_PRODUCT = "edgenvr"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=6dcb19aa29774a95b94c1322cb07fd70"

# Built from the checkout this layer lives in (yocto/meta-edgenvr inside the edgenvr
# repository); the crates come from crates.io, pinned by Cargo.lock (edgenvr-crates.inc).
inherit externalsrc cargo cargo-update-recipe-crates systemd useradd

EXTERNALSRC ?= "${@os.path.abspath(os.path.join(d.getVar('THISDIR'), '../../../..'))}"
EXTERNALSRC_BUILD ?= "${WORKDIR}/build"

require ${BPN}-crates.inc

# Which board/ profile becomes /etc/edgenvr/edgenvr.toml (set per machine in the kas files).
EDGENVR_BOARD ??= "rpi4"

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/edgenvr --no-create-home --shell /sbin/nologin --groups video edgenvr"
GROUPADD_PARAM:${PN} = "--system edgenvr"

SYSTEMD_SERVICE:${PN} = "edgenvr.service media-usb0.mount"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_install:append() {
    install -d ${D}${systemd_system_unitdir} ${D}${sysconfdir}/edgenvr ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${S}/systemd/edgenvr.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/systemd/media-usb0.mount ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/systemd/99-edgenvr-usb.rules ${D}${nonarch_base_libdir}/udev/rules.d/
    install -m 0640 ${S}/board/${EDGENVR_BOARD}/edgenvr.toml ${D}${sysconfdir}/edgenvr/edgenvr.toml
    install -d ${D}${docdir}/edgenvr
    install -m 0644 ${S}/README.md ${D}${docdir}/edgenvr/
}

FILES:${PN} += "${systemd_system_unitdir} ${nonarch_base_libdir}/udev/rules.d"
CONFFILES:${PN} = "${sysconfdir}/edgenvr/edgenvr.toml"
