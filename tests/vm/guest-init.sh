#!/bin/sh
# /init of the edgenvr test VM (busybox): mounts, loads the V4L2 drivers, mounts the host's
# share at /mnt, runs /mnt/guest.sh, writes its exit code to /mnt/.rc and powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
for arg in $(cat /proc/cmdline); do
  case $arg in
    vm.epoch=*) date -u -s "@${arg#vm.epoch=}" >/dev/null 2>&1 ;;
    vm.timeout=*) timeout_s=${arg#vm.timeout=} ;;
  esac
done
for m in virtio_mmio virtio_pci 9pnet_virtio 9p virtio_net; do modprobe $m 2>/dev/null; done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt; then
  echo "vm: cannot mount the share"; poweroff -f
fi
# Driver options can be set by the share's vm.conf (sourced).
VIVID_OPTS="n_devs=1 node_types=0x1 input_types=0x81"
VICODEC_OPTS=""
LOOPBACK_OPTS="exclusive_caps=0 card_label=v4l2loopback"
[ -f /mnt/vm.conf ] && . /mnt/vm.conf
modprobe vivid $VIVID_OPTS
[ "${VICODEC:-1}" = 1 ] && modprobe vicodec $VICODEC_OPTS
[ "${LOOPBACK:-1}" = 1 ] && modprobe v4l2loopback $LOOPBACK_OPTS
sleep 0.2
node_of() { for d in /sys/class/video4linux/video*; do
  [ "$(cat $d/name 2>/dev/null)" = "$1" ] && echo /dev/${d##*/} && return; done; }
{
  echo "VIVID_DEV=$(node_of vivid-000-vid-cap)"
  echo "VICODEC_ENC=$(node_of stateful-encoder)"
  echo "VICODEC_DEC=$(node_of stateful-decoder)"
  echo "VIVID_OPTS=\"$VIVID_OPTS\""
  echo "LOOPBACK_DEV=$(for d in /sys/class/video4linux/video*; do case "$(cat $d/name)" in v4l2loopback*) echo /dev/${d##*/};; esac; done | head -1)"
} >/run/vm-devices.env
set -a; . /run/vm-devices.env; set +a
cat /run/vm-devices.env
if [ -x /mnt/guest.sh ] || [ -f /mnt/guest.sh ]; then
  cd /mnt
  timeout "${timeout_s:-300}" sh /mnt/guest.sh
  rc=$?
  echo "$rc" >/mnt/.rc
  echo "vm: guest.sh exited $rc"
fi
sync
umount /mnt 2>/dev/null
poweroff -f
