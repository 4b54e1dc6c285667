#!/usr/bin/env python3
"""Fails when the crate's files depend on each other in a cycle.

    scripts/module-cycles.py [-v] [SRC]        (default SRC: src)

A module is a file (`src/a/b.rs` and `src/a/b/mod.rs` are both `a::b`). File A depends on
file B when A names a path into B:
- `crate::…` anywhere, in code or in a doc link (a doc link is a dependency a reader
  follows, and `cargo doc` checks it),
- `super::…` (and `super::super::…`), `self::…`,
- a `use` of a child module by its bare name (`use negotiate::choose` in `v4l2/mod.rs`),
with `use` groups expanded (`use crate::a::{b, c::{d, e}}` names `a::b`, `a::c::d`,
`a::c::e`). A path is charged to the longest module prefix it has; what follows is an
item (a type, a function). `mod x;` declarations and `pub use` re-exports of a parent are
not dependencies of the parent on its child beyond what they name.

Code under `#[cfg(test)]` is left out: a test may reach anywhere (an encoder test draws
the test camera's picture) without making the modules depend on each other.

A dependency of a module on one of its ancestors (`super::FrameSender` in `source/rtsp.rs`)
counts like any other, so a parent that uses its child while the child uses the parent is
a cycle. `-v` prints every module's dependencies.
"""

import os
import re
import sys


def modules(root):
    mods = {}
    for dp, _, fn in os.walk(root):
        for f in fn:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                continue
            mods["::".join(rel)] = p
    return mods


def strip_tests(text):
    """Removes items marked `#[cfg(test)]` (with their brace-delimited bodies)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        # The item ends at its first `;` at depth 0 or at the `}` closing its first `{`.
        depth = 0
        while j < len(text):
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif c == ";" and depth == 0:
                j += 1
                break
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']; `a::b as c` -> ['a::b']."""
    tree = re.sub(r"\s+as\s+[A-Za-z_0-9]+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)::\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, body = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (c == "{") - (c == "}")
        cur += c
    parts.append(cur)
    res = []
    for p in parts:
        if not p or p == "self":
            res.append(prefix)
        else:
            res.extend(prefix + "::" + x for x in expand(p))
    return res


def deps_of(m, path, mods):
    text = strip_tests(open(path, encoding="utf-8").read())
    children = {k.rsplit("::", 1)[1] for k in mods if k.startswith(m + "::") and k.count("::") == m.count("::") + 1}
    paths = []
    # `use` trees first (they may hold groups), then the rest of the text for inline paths.
    for u in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(u.group(1)))
    rest = re.sub(r"\buse\s+[^;]+;", "", text)
    paths.extend(re.findall(r"(?<![A-Za-z_0-9$])((?:crate|super|self)(?:::[A-Za-z_0-9]+)+)", rest))
    found = set()
    for p in paths:
        segs = [s for s in p.split("::") if s]
        if not segs:
            continue
        base = []
        if segs[0] == "crate":
            segs = segs[1:]
        elif segs[0] == "super":
            base = m.split("::")
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
        elif segs[0] == "self":
            base, segs = m.split("::"), segs[1:]
        elif segs[0] in children:
            base = m.split("::")
        else:
            continue  # an external crate or a std path
        full = base + segs
        for k in range(len(full), 0, -1):
            cand = "::".join(full[:k])
            if cand in mods:
                if cand != m:
                    found.add(cand)
                break
    return found


def cycles(deps):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    root = args[0] if args else "src"
    mods = modules(root)
    deps = {m: deps_of(m, p, mods) for m, p in mods.items()}
    if verbose:
        for m in sorted(deps):
            print(f"{m} -> {' '.join(sorted(deps[m]))}")
    found = cycles(deps)
    for comp in found:
        # Show the edges inside the cycle, so the fix is obvious.
        edges = [f"{a} -> {b}" for a in comp for b in sorted(deps[a]) if b in comp]
        print("module cycle: " + ", ".join(edges))
    if found:
        return 1
    print(f"no module cycles ({len(mods)} modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
