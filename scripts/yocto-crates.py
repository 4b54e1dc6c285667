#!/usr/bin/python3
"""Writes the crate list of the Yocto recipe from Cargo.lock, so bitbake fetches exactly
the crates (and checksums) cargo resolved. Run after every change to Cargo.lock:

    scripts/yocto-crates.py            # rewrite yocto/meta-edgenvr/.../edgenvr-crates.inc
    scripts/yocto-crates.py --check    # exit 1 if the file is stale (the test command runs this)
"""
import pathlib
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCK = ROOT / "Cargo.lock"
INC = ROOT / "yocto/meta-edgenvr/recipes-edgenvr/edgenvr/edgenvr-crates.inc"


def render() -> str:
    lock = tomllib.loads(LOCK.read_text())
    crates = sorted(
        (p["name"], p["version"], p["checksum"])
        for p in lock["package"]
        if p.get("source", "").startswith("registry+https://github.com/rust-lang/crates.io-index")
    )
    lines = [
        "# Generated from Cargo.lock by scripts/yocto-crates.py; do not edit by hand.",
        "# Regenerate after changing Cargo.lock: scripts/yocto-crates.py",
        "",
    ]
    uris = [f"crate://crates.io/{n}/{v}" for n, v, _ in crates]
    lines += [f'SRC_URI += "{uris[0]} \\']
    lines += [f"            {u} \\" for u in uris[1:]]
    lines += ['"', ""]
    lines += [f'SRC_URI[{n}-{v}.sha256sum] = "{c}"' for n, v, c in crates]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render()
    if sys.argv[1:] == ["--check"]:
        if not INC.exists() or INC.read_text() != text:
            print(f"{INC.relative_to(ROOT)} is stale: run scripts/yocto-crates.py", file=sys.stderr)
            return 1
        print(f"{INC.relative_to(ROOT)} matches Cargo.lock ({text.count('crate://')} crates)")
        return 0
    INC.write_text(text)
    print(f"wrote {INC.relative_to(ROOT)} ({text.count('crate://')} crates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
