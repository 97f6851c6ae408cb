#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The layout rules of docs/architecture.md, checked over src/ and include/.

  - no source file over 1,000 lines, no function over 120;
  - errno text (strerror) only in src/common/error.c;
  - getenv only in the settings module, and the front ends' and daemons'
    own switches;
  - every include arrow points down the layers below;
  - every file says its job in a comment under its licence line.

Prints one line per breach and exits 1 if there is any.  Run from anywhere:
python3 tests/layout-check.py [ROOT]."""
import os
import re
import sys

MAX_FILE_LINES = 1000
MAX_FUNCTION_LINES = 120
ERRNO_TEXT_HOME = {"src/common/error.c"}
# the library's one reader; the front ends' and daemons' own switches
GETENV_HOMES = ("src/lib/settings.c", "src/cli/", "src/runtime/", "src/fsd/main.c", "src/netd/main.c")

# What each directory may include, besides itself and include/msb-error.h
# (a leaf every layer shares).  "msb.h" is the library's interface.
MAY_INCLUDE = {
    "src/common": set(),
    "src/proto": {"src/common"},
    "src/net": {"src/common"},
    "src/lib": {"src/net", "src/proto", "src/common", "msb.h"},
    "src/fsd": {"src/common"},
    "src/netd": {"src/net", "src/common"},
    "src/agent": {"src/proto", "src/common"},
    "src/cli": {"src/lib", "src/net", "src/proto", "src/common", "src/api", "msb.h"},
    # the API server uses the library's interface alone
    "src/api": {"src/common", "msb.h"},
    "src/runtime": {"src/lib", "src/net", "src/proto", "src/common", "msb.h"},
    "include": set(),
}

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def code_only(text):
    """text with comments and string literals blanked, lines kept."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    # strings first would break on quotes in comments; comments first break
    # on "/*" in strings: take whichever starts first, repeatedly
    out, i = [], 0
    both = re.compile(COMMENT.pattern + "|" + STRING.pattern, re.S)
    for m in both.finditer(text):
        out.append(text[i:m.start()])
        out.append(blank(m))
        i = m.end()
    out.append(text[i:])
    return "".join(out)


def functions(lines):
    """(name, first line, length) of each function: a body opens with "{"
    alone in column 0 and closes with "}" in column 0 (the tree's style);
    the signature lines above the "{" count too."""
    out = []
    for n, line in enumerate(lines):
        if line.rstrip() != "{":
            continue
        start = n
        while start > 0 and lines[start - 1].strip() and not lines[start - 1].startswith(("}", "#")) \
                and not lines[start - 1].rstrip().endswith((";", "*/")):
            start -= 1
        end = n
        while end < len(lines) and not lines[end].startswith("}"):
            end += 1
        m = re.search(r"(\w+)\s*\(", " ".join(lines[start:n]))
        out.append((m.group(1) if m else "?", start + 1, end - start + 1))
    return out


def layer_of(rel):
    for d in MAY_INCLUDE:
        if rel == d or rel.startswith(d + "/"):
            return d
    return None


def resolve(root, rel, inc):
    """The repository path an include names, as the build finds it."""
    for base in (os.path.dirname(rel), "src", "include"):
        cand = os.path.normpath(os.path.join(base, inc))
        if os.path.exists(os.path.join(root, cand)):
            return cand
    return None


def check(root):
    bad = []
    for top in ("src", "include"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                lines = text.split("\n")
                if len(lines) < 2 or not lines[1].startswith("/*"):
                    bad.append(f"{rel}: its second line is not a comment saying the file's job")
                if len(lines) - 1 > MAX_FILE_LINES:
                    bad.append(f"{rel}: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
                code = code_only(text)
                for fn, first, length in functions(code.split("\n")):
                    if length > MAX_FUNCTION_LINES:
                        bad.append(f"{rel}:{first}: {fn}() is {length} lines (at most {MAX_FUNCTION_LINES})")
                if re.search(r"\bstrerror(_r)?\s*\(", code) and rel not in ERRNO_TEXT_HOME:
                    bad.append(f"{rel}: calls strerror (errno text belongs to src/common/error.c)")
                if re.search(r"\b(secure_)?getenv\s*\(", code) and not rel.startswith(GETENV_HOMES):
                    bad.append(f"{rel}: calls getenv (settings are read in src/lib/settings.c)")
                layer = layer_of(rel)
                for inc in INCLUDE.findall(text):
                    target = resolve(root, rel, inc)
                    if target is None or target == "include/msb-error.h":
                        continue
                    tlayer = "msb.h" if target == "include/msb.h" else layer_of(target)
                    if tlayer == layer or tlayer in MAY_INCLUDE.get(layer, set()):
                        continue
                    bad.append(f"{rel}: includes {inc} ({tlayer}), an arrow {layer} may not have")
    return bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    bad = check(os.path.abspath(root))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
