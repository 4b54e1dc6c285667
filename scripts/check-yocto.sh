#!/usr/bin/env bash
# Checks the Yocto layer without building an image (no bitbake here): the recipe's crate
# list matches Cargo.lock, and oelint-adv (PyPI) finds nothing in the recipes.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v oelint-adv >/dev/null || python3 -m pip install -q --disable-pip-version-check oelint-adv
scripts/yocto-crates.py --check
# Suppressed, with reasons:
#  HOMEPAGE, BUGTRACKER: edgenvr has no public site or tracker yet; set them when it does
#  bbclassextend: the recorder runs on the target only, no -native variant makes sense
#  CVE_PRODUCT on the image: an image has no CVE product of its own
out=$(oelint-adv --quiet \
  --suppress oelint.var.mandatoryvar.HOMEPAGE \
  --suppress oelint.var.suggestedvar.BUGTRACKER \
  --suppress oelint.var.bbclassextend \
  --suppress oelint.var.suggestedvar.CVE_PRODUCT \
  yocto/meta-edgenvr/recipes-*/*/*.bb 2>&1) || true
if [[ -n $out ]]; then
  echo "$out"
  echo "oelint-adv found problems in yocto/meta-edgenvr" >&2
  exit 1
fi
echo "yocto/meta-edgenvr: oelint-adv clean"
