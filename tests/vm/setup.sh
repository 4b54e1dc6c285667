#!/usr/bin/env bash
# Prepares an arm64 VM that has real V4L2 drivers: Debian 12's own arm64 kernel, a busybox
# initramfs, and the kernel's vivid (camera) plus vicodec (memory-to-memory codec) and
# v4l2loopback (a capture node fed by a writer), the last two built out of tree against the
# exact kernel. tests/vm/run.sh boots it. Idempotent: finished steps are skipped.
#
#   tests/vm/setup.sh        # VM_DIR defaults to /tmp/edgenvr-vm
#
# Nothing is installed into the host's dpkg for arm64: the arm64 packages are fetched with a
# private apt state and unpacked under $VM_DIR.
set -euo pipefail
VM_DIR=${VM_DIR:-/tmp/edgenvr-vm}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$VM_DIR"
log() { echo "vm-setup: $*" >&2; }

# --- Host tools --------------------------------------------------------------------------
host_pkgs=(gcc-aarch64-linux-gnu make cpio xz-utils kmod libelf1 libssl3 bc file binutils-aarch64-linux-gnu)
missing=()
for p in "${host_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v qemu-system-aarch64 >/dev/null; then
  # The plain bookworm qemu-system-arm would replace the machine's newer backports
  # qemu-utils; take both from bookworm-backports.
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" >/etc/apt/sources.list.d/edgenvr-backports.list
  fi
  need_bpo=1
fi
if ((${#missing[@]})) || [[ ${need_bpo:-} ]]; then
  log "installing host packages: ${missing[*]} ${need_bpo:+qemu-system-arm (backports)}"
  apt-get update -qq
  ((${#missing[@]})) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ ${need_bpo:-} ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports \
      qemu-system-arm qemu-utils >/dev/null
  fi
fi

# The image is rebuilt whenever this script or the guest's /init changes.
stamp=$(cat "$here/setup.sh" "$here/guest-init.sh" | sha256sum | cut -c1-16)
if [[ -f $VM_DIR/initramfs.cpio.gz && -f $VM_DIR/vmlinuz && $(cat "$VM_DIR/.complete" 2>/dev/null) == "$stamp" ]]; then
  log "ready in $VM_DIR"
  exit 0
fi

# --- A private apt for arm64 packages ---------------------------------------------------------
apt_dir=$VM_DIR/apt
mkdir -p "$apt_dir"/{state/lists/partial,cache/archives/partial,etc/parts,etc/prefs}
: >"$apt_dir/status"
cat >"$apt_dir/sources.list" <<EOF
deb [arch=arm64,amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64,amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64,amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
apt_opts=(-o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir/cache" -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/etc/parts" -o "Dir::Etc::PreferencesParts=$apt_dir/etc/prefs"
  -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "APT::Architectures::=amd64"
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" -o "Acquire::Languages=none" -o "APT::Install-Recommends=0")
if [[ ! -f $apt_dir/.updated ]] || [[ -n $(find "$apt_dir/.updated" -mmin +720) ]]; then
  log "reading arm64 package lists"
  apt-get "${apt_opts[@]}" update -qq
  touch "$apt_dir/.updated"
fi

# The kernel ABI is whatever linux-image-arm64 points at today; headers, kbuild and the
# source must be of the same version.
image_pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64:arm64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-arm64\).*/\1/p' | head -1)
abi=${image_pkg#linux-image-}
abi=${abi%%:*}
abi=${abi%-arm64} # 6.1.0-56
kabi=$abi-arm64   # uname -r
kver=$(apt-cache "${apt_opts[@]}" show "$image_pkg:arm64" | sed -n 's/^Version: //p' | head -1)
series=${abi%%.0-*} # 6.1
log "kernel $abi ($kver)"

debs=$VM_DIR/debs
mkdir -p "$debs"
fetch() { (cd "$debs" && apt-get "${apt_opts[@]}" download "$@" >/dev/null); }
[[ -n $(ls "$debs"/linux-image-"$abi"-arm64_* 2>/dev/null) ]] ||
  fetch "linux-image-$abi-arm64:arm64=$kver" "linux-headers-$abi-arm64:arm64=$kver" \
    "linux-headers-$abi-common=$kver" "linux-kbuild-$series:amd64=$kver" "linux-source-$series=$kver" \
    v4l2loopback-dkms

# Guest userland: busybox, v4l-utils and glibc/libstdc++ for edgenvr, with every dependency,
# resolved by apt against an empty status file and downloaded (not installed).
user_pkgs=(busybox-static:arm64 v4l-utils:arm64 libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 zlib1g:arm64)
if [[ ! -f $VM_DIR/.userland ]]; then
  log "downloading the guest userland"
  apt-get "${apt_opts[@]}" install -y -qq --download-only "${user_pkgs[@]}" >/dev/null
  touch "$VM_DIR/.userland"
fi

# --- Kernel, headers and out-of-tree modules ------------------------------------------------
kroot=$VM_DIR/kroot # unpacked image + headers + kbuild
if [[ ! -f $kroot/.done ]]; then
  rm -rf "$kroot"
  mkdir -p "$kroot"
  for d in "$debs"/linux-image-"$abi"-arm64_*.deb "$debs"/linux-headers-*.deb "$debs"/linux-kbuild-*.deb; do
    dpkg-deb -x "$d" "$kroot"
  done
  # The headers' symlinks point at /usr/src and /usr/lib/linux-kbuild-*; make them private.
  find "$kroot/usr/src" "$kroot/lib/modules" -type l | while read -r l; do
    t=$(readlink "$l")
    if [[ $t == /* ]]; then ln -sfn "$kroot$t" "$l"; fi
  done
  # The flavour's Makefile includes the common one by absolute path.
  sed -i "s|include /usr/src/|include $kroot/usr/src/|" "$kroot/usr/src/linux-headers-$kabi/Makefile"
  depmod -b "$kroot" "$kabi"
  touch "$kroot/.done"
fi
hdrs=$kroot/usr/src/linux-headers-$kabi
moddir=$kroot/lib/modules/$kabi
kmake=(make -s -C "$hdrs" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- KBUILD_VERBOSE=0)

build=$VM_DIR/build
mkdir -p "$build"
if [[ ! -f $build/vicodec/vicodec.ko ]]; then
  log "building vicodec.ko from linux-source-$series"
  rm -rf "$build/vicodec"
  mkdir -p "$build/vicodec"
  src_deb=$(ls "$debs"/linux-source-"$series"_*.deb)
  dpkg-deb --fsys-tarfile "$src_deb" | tar -x -C "$build" "./usr/src/linux-source-$series.tar.xz"
  tar -xJf "$build/usr/src/linux-source-$series.tar.xz" -C "$build/vicodec" --strip-components=5 \
    "linux-source-$series/drivers/media/test-drivers/vicodec"
  rm -rf "$build/usr"
  "${kmake[@]}" M="$build/vicodec" CONFIG_VIDEO_VICODEC=m modules
fi
if [[ ! -f $build/v4l2loopback/v4l2loopback.ko ]]; then
  log "building v4l2loopback.ko"
  rm -rf "$build/v4l2loopback" "$build/lb"
  mkdir -p "$build/lb"
  dpkg-deb -x "$debs"/v4l2loopback-dkms_*.deb "$build/lb"
  mv "$build"/lb/usr/src/v4l2loopback-* "$build/v4l2loopback"
  rm -rf "$build/lb"
  "${kmake[@]}" M="$build/v4l2loopback" modules
fi
for ko in "$build/vicodec/vicodec.ko" "$build/v4l2loopback/v4l2loopback.ko"; do
  magic=$(modinfo -F vermagic "$ko")
  [[ $magic == "$kabi "* ]] || { log "$ko has vermagic '$magic', not $kabi"; exit 1; }
done

# --- The initramfs ----------------------------------------------------------------------------
rootfs=$VM_DIR/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,root,lib/modules}
for d in "$apt_dir"/cache/archives/*.deb; do
  dpkg-deb -x "$d" "$rootfs"
done
# usrmerge-style links so /lib/ld-linux-aarch64.so.1 resolves.
for d in lib bin sbin; do
  if [[ -d $rootfs/usr/$d && ! -L $rootfs/$d ]]; then
    cp -a "$rootfs/$d/." "$rootfs/usr/$d/" && rm -rf "${rootfs:?}/$d" && ln -s "usr/$d" "$rootfs/$d"
  fi
done
mkdir -p "$rootfs/usr/lib/modules/$kabi/updates"
for app in sh ash mount umount mkdir cat echo ls sleep poweroff reboot insmod modprobe rmmod lsmod \
  date timeout grep sed awk head tail cp mv rm ln dd kill ps find wc tr cut sort uniq seq test \
  printf env chmod sync mknod stat du df ip ifconfig udhcpc wget usleep true false expr xargs tee od \
  hexdump md5sum basename dirname readlink realpath mdev uname dmesg pidof killall tar gzip; do
  [[ -e $rootfs/usr/bin/$app ]] || ln -s busybox "$rootfs/usr/bin/$app"
done
# Modules: vivid and the media/9p/virtio stack from the kernel, plus the two built here.
kmods=$rootfs/usr/lib/modules/$kabi
cp "$moddir"/modules.order "$moddir"/modules.builtin* "$kmods/"
want=(vivid v4l2-mem2mem 9p 9pnet_virtio virtio_mmio virtio_pci virtio_net)
mapfile -t paths < <(cd "$moddir" && for m in "${want[@]}"; do
  modinfo -b "$kroot" -k "$kabi" -F filename "$m" 2>/dev/null || true
done)
# Dependencies, recursively.
declare -A seen=()
queue=("${paths[@]}")
while ((${#queue[@]})); do
  f=${queue[0]}
  queue=("${queue[@]:1}")
  [[ $f == /* && -f $f ]] || continue
  [[ ${seen[$f]:-} ]] && continue
  seen[$f]=1
  rel=${f#"$moddir"/}
  mkdir -p "$kmods/$(dirname "$rel")"
  cp "$f" "$kmods/$rel"
  for dep in $(modinfo -F depends "$f" | tr , ' '); do
    queue+=("$(modinfo -b "$kroot" -k "$kabi" -F filename "$dep" 2>/dev/null || true)")
  done
done
# Debian may compress modules; busybox modprobe wants them plain.
find "$kmods" -name '*.ko.xz' -exec xz -d {} +
cp "$build/vicodec/vicodec.ko" "$build/v4l2loopback/v4l2loopback.ko" "$kmods/updates/"
depmod -b "$rootfs" "$kabi"
cp "$here/guest-init.sh" "$rootfs/init"
chmod +x "$rootfs/init"
# Every dynamic binary the guest runs must find its libraries in the rootfs.
for b in "$rootfs/usr/bin/v4l2-ctl"; do
  for lib in $(aarch64-linux-gnu-readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    [[ -n $(find "$rootfs/usr/lib" -name "$lib" | head -1) ]] || { log "$b needs $lib, missing"; exit 1; }
  done
done
(cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$VM_DIR/initramfs.cpio.gz.tmp"
mv "$VM_DIR/initramfs.cpio.gz.tmp" "$VM_DIR/initramfs.cpio.gz"
cp "$kroot/boot/vmlinuz-$kabi" "$VM_DIR/vmlinuz"
echo "$kabi" >"$VM_DIR/kernel-abi"
echo "$stamp" >"$VM_DIR/.complete"
log "ready in $VM_DIR (kernel $kabi)"
