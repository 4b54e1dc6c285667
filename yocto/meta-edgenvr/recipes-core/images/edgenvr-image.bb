# An image recipe: no upstream, tracker or CVE product of its own.
SUMMARY = "Minimal flashable image that runs edgenvr"
DESCRIPTION = "Read-only root filesystem, SSH for maintenance, NTP time sync, and a data \
               partition for the recorder's index and SD-card recordings."
SECTION = "images"
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "read-only-rootfs ssh-server-openssh"
# tzdata: the API answers timeline questions in a client's time zone (?tz=Europe/Berlin)
# from /usr/share/zoneinfo; the box itself keeps UTC.
IMAGE_INSTALL += "edgenvr chrony e2fsprogs-mke2fs tzdata"

# The data partition (see wic/edgenvr-sdimage.wks): the state directory survives a
# read-only root and re-flashing the root partition.
WKS_FILE = "edgenvr-sdimage.wks"
IMAGE_FSTYPES += "wic.bz2 wic.bmap"
