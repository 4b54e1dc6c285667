#!/usr/bin/env python3
"""Function and file lengths of the Rust code outside tests, against the project's limits.

    scripts/code-size.py [--top N] [DIR ...]     (default DIR: src)

How it measures:
- A file's length is its number of lines, all of them (comments, blank lines and its
  `#[cfg(test)]` module included): the stricter reading of "files under ~800 lines".
- A function's length is the number of lines from the line holding `fn` to the line
  holding its closing brace, both included, so the signature counts and the doc comment
  does not. A nested function or closure counts towards its parent; a nested `fn` is also
  measured on its own.
- Code under `#[cfg(test)]` (the `mod tests` at a file's end, or any other item it marks)
  is not measured as functions: tests may be long tables.
- The Rust is read with a small tokenizer that knows comments (nested block comments
  too), string, raw-string, byte-string and char literals and lifetimes, so braces inside
  them do not count.

Exits 1 when a function outside tests is over FN_LIMIT lines or a file over FILE_LIMIT.
"""

import os
import re
import sys

FN_LIMIT = 80
FILE_LIMIT = 800


def tokens(text):
    """Yields (kind, value, line) for the tokens that matter: identifiers, `{`, `}`, `;`,
    `#`, `[`, `]`, `(`, `)`; literals and comments are skipped."""
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif re.match(r'b?r#*"', text[i:i + 40]):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            line += text.count("\n", i, j)
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            line += text.count("\n", i, j)
            i = j + 1
        elif c == "'" or (c == "b" and text.startswith("b'", i)):
            # A char literal ('a', '\n', '\u{1F600}', b'x') or a lifetime ('a, 'static).
            j = i + (2 if c == "b" else 1)
            m = re.match(r"(\\(u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", text[j:j + 12])
            i = j + m.end() if m else j
        elif c.isalpha() or c == "_":
            m = re.match(r"[A-Za-z_0-9]+", text[i:])
            yield ("id", m.group(0), line)
            i += m.end()
        else:
            if c in "{};#[]()":
                yield ("p", c, line)
            i += 1


def measure(path):
    """Returns (file lines, [(fn name, first line, length)]) for functions outside tests."""
    text = open(path, encoding="utf-8").read()
    toks = list(tokens(text))
    fns = []
    depth = 0
    # Stack of open braces: (kind, name, start line, is test) where kind is "fn" or "other".
    stack = []
    pending_fn = None  # (name, line) of an `fn` whose body brace has not been seen yet
    pending_test = False  # a #[cfg(test)] applies to the next item
    in_test = 0  # depth of test items we are inside
    i = 0
    while i < len(toks):
        kind, v, line = toks[i]
        if kind == "p" and v == "#" and i + 1 < len(toks) and toks[i + 1][1] == "[":
            # An attribute: collect to the matching `]`.
            j, d, words = i + 1, 0, []
            while j < len(toks):
                if toks[j][1] == "[":
                    d += 1
                elif toks[j][1] == "]":
                    d -= 1
                    if d == 0:
                        break
                else:
                    words.append(toks[j][1])
                j += 1
            if words[:3] == ["cfg", "(", "test"] and words[3:4] == [")"]:
                pending_test = True
            i = j + 1
            continue
        if kind == "id" and v == "fn" and i + 1 < len(toks) and toks[i + 1][0] == "id":
            pending_fn = (toks[i + 1][1], line)
        elif kind == "p" and v == ";" and pending_fn and not any(s[0] == "paren" for s in stack):
            pending_fn = None  # a declaration without a body (trait method)
            pending_test = False
        elif kind == "p" and v == ";":
            pending_test = False
        elif kind == "p" and v in "(":
            stack.append(("paren", None, line, False))
        elif kind == "p" and v == ")":
            if stack and stack[-1][0] == "paren":
                stack.pop()
        elif kind == "p" and v == "{":
            test = pending_test
            pending_test = False
            if pending_fn and not any(s[0] == "paren" for s in stack[-1:]):
                stack.append(("fn", pending_fn[0], pending_fn[1], test))
                pending_fn = None
            else:
                stack.append(("other", None, line, test))
            if test:
                in_test += 1
        elif kind == "p" and v == "}":
            while stack and stack[-1][0] == "paren":
                stack.pop()
            if stack:
                k, name, start, test = stack.pop()
                if test:
                    in_test -= 1
                if k == "fn" and in_test == 0:
                    fns.append((name, start, line - start + 1))
        i += 1
    return text.count("\n") + (0 if text.endswith("\n") else 1), fns


def main(argv):
    top = 10
    dirs = []
    args = iter(argv)
    for a in args:
        if a == "--top":
            top = int(next(args))
        else:
            dirs.append(a)
    dirs = dirs or ["src"]
    files, fns = [], []
    for d in dirs:
        for dp, _, names in os.walk(d):
            for f in sorted(names):
                if f.endswith(".rs"):
                    p = os.path.join(dp, f)
                    lines, found = measure(p)
                    files.append((lines, p))
                    fns.extend((length, f"{p}:{start}", name) for name, start, length in found)
    files.sort(reverse=True)
    fns.sort(reverse=True)
    print(f"longest functions outside tests (limit {FN_LIMIT} lines):")
    for length, where, name in fns[:top]:
        print(f"  {length:5}  {name}  {where}")
    print(f"longest files (limit {FILE_LIMIT} lines):")
    for lines, p in files[:top]:
        print(f"  {lines:5}  {p}")
    bad = [f for f in fns if f[0] > FN_LIMIT] + [f for f in files if f[0] > FILE_LIMIT]
    if bad:
        print(f"over the limit: {len(bad)}")
        return 1
    print(f"{len(fns)} functions in {len(files)} files, all within the limits")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
