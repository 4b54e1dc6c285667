#!/usr/bin/env bash
# Boots the VM prepared by tests/vm/setup.sh, runs SHARE_DIR/guest.sh inside it (SHARE_DIR is
# mounted at /mnt, guest.sh runs there as root with VIVID_DEV, VICODEC_ENC, VICODEC_DEC and
# LOOPBACK_DEV set) and exits with guest.sh's exit code.
#   tests/vm/run.sh SHARE_DIR [SECONDS]
# 124: guest.sh timed out (or the VM overran and was killed); 125: nothing came back.
# The guest console goes to stdout.
set -euo pipefail
VM_DIR=${VM_DIR:-/tmp/edgenvr-vm}
share=$(realpath "$1")
secs=${2:-300}
rm -f "$share/.rc"
rc=0
timeout -s KILL $((secs + 60)) qemu-system-aarch64 -M virt -cpu "${VM_CPU:-cortex-a53}" \
  -smp "${VM_SMP:-2}" -m "${VM_MEM:-1024}" -nographic -no-reboot -monitor none -serial stdio \
  -kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initramfs.cpio.gz" \
  -append "console=ttyAMA0 panic=-1 loglevel=${VM_LOGLEVEL:-4} vm.epoch=$(date +%s) vm.timeout=$secs" \
  -virtfs "local,path=$share,mount_tag=share,security_model=none,id=share" \
  -nic none </dev/null || rc=$?
if [[ -f $share/.rc ]]; then
  exit "$(cat "$share/.rc")"
fi
[[ $rc == 137 ]] && exit 124
exit 125
