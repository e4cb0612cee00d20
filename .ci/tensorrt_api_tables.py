"""Per-version tables of TensorRT's Python API, read from NVIDIA's pybind11 sources (facts, not code).

    python .ci/tensorrt_api_tables.py TENSORRT_GIT_DIR OUT_DIR [TAG ...]

reads, at each tag of NVIDIA/TensorRT (default 8.5.3, v8.6.1, v10.3.0: what JetPack 5.1, 6.0 and 6.1/6.2
ship), the binding files under python/src/ and the package's own tensorrt/__init__.py, and
writes OUT_DIR/TAG.json: for each Python class (and nested enum) the names it exposes (.def, .def_property,
.def_readwrite, .value, ...), its bases, and the module's own names. Nothing of NVIDIA's is copied beyond
those names. test/runtime/test_tensorrt_api.py checks the backend's calls against the tables.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

DEFAULT_TAGS = ("8.5.3", "v8.6.1", "v10.3.0")
DECLARATION = re.compile(r"py::(class_|enum_)<")
MEMBER = re.compile(r"\.(def|def_static|def_property|def_property_readonly|def_readwrite|def_readonly|value)\s*\(\s*\"(\w+)\"")
MODULE_DEF = re.compile(r"\bm\s*\.\s*(def|attr)\s*\(\s*\"(\w+)\"")


def _skip_template(text: str, start: int) -> int:
    """Index just past the '>' closing the template that opens at text[start] == '<'."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "<":
            depth += 1
        elif text[i] == ">":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced template")


def _statement_end(text: str, start: int) -> int:
    """Index of the ';' ending the statement that runs from start (strings and comments skipped)."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            i = text.index("\n", i)
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 1
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == ";" and depth <= 0:
            return i
        i += 1
    return len(text)


def parse_bindings(text: str, classes: dict, cpp_names: dict) -> list[str]:
    """Adds the classes declared in one binding file to `classes`; returns the module-level names."""
    variables: dict[str, str] = {}
    module: list[str] = []
    for match in DECLARATION.finditer(text):
        after = _skip_template(text, match.end() - 1)
        template = text[match.end():after - 1]
        head = re.match(r"\s*(\w*)\s*[({]\s*(\w+)\s*,\s*\"(\w+)\"", text[after:])
        if head is None:
            continue
        variable, parent, name = head.groups()
        qualified = name if parent == "m" else f"{variables.get(parent, parent)}.{name}"
        args = [a.strip() for a in re.split(r",(?![^<]*>)", template)]
        entry = classes.setdefault(qualified, {"kind": match.group(1).rstrip("_"), "bases": [], "members": []})
        cpp_names[args[0]] = qualified
        entry["bases"] = [a for a in args[1:] if a]  # resolved to Python names below
        if parent == "m":
            module.append(name)
        else:
            classes[variables.get(parent, parent)]["members"].append(name)
        if variable:
            variables[variable] = qualified
            chain_end = after + head.end()
        else:
            chain_end = _statement_end(text, after)
        entry["members"] += [m.group(2) for m in MEMBER.finditer(text, after, chain_end)]
    for variable, qualified in variables.items():  # statements on a declared variable: var.def(...)...;
        for use in re.finditer(rf"(?<![\w.]){variable}\s*\.", text):
            end = _statement_end(text, use.start())
            classes[qualified]["members"] += [m.group(2) for m in MEMBER.finditer(text, use.start(), end)]
    module += [m.group(2) for m in MODULE_DEF.finditer(text)]
    return module


def table(git_dir: Path, tag: str) -> dict:
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(git_dir), "show", f"{tag}:{path}"], check=True,
                              capture_output=True, text=True).stdout

    files = subprocess.run(["git", "-C", str(git_dir), "ls-tree", "-r", "--name-only", tag, "python/src"],
                           check=True, capture_output=True, text=True).stdout.split()
    sources = sorted(f for f in files if f.endswith(".cpp"))
    classes: dict = {}
    cpp_names: dict[str, str] = {}
    module: list[str] = []
    for path in sources:
        module += parse_bindings(show(path), classes, cpp_names)
    # the package's own Python (nptype, volume, __version__): its path moved in 8.6
    init = next(f for f in ("python/packaging/bindings_wheel/tensorrt/__init__.py",
                            "python/packaging/tensorrt/__init__.py")
                if f in subprocess.run(["git", "-C", str(git_dir), "ls-tree", "-r", "--name-only", tag,
                                        "python/packaging"], check=True, capture_output=True, text=True).stdout.split())
    package = show(init)
    module += re.findall(r"^def (\w+)", package, re.M) + re.findall(r"^(\w+)\s*=", package, re.M)
    for entry in classes.values():
        entry["bases"] = sorted({cpp_names[b] for b in entry["bases"] if b in cpp_names})
        entry["members"] = sorted(set(entry["members"]))
    commit = subprocess.run(["git", "-C", str(git_dir), "rev-parse", f"{tag}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    return {"source": {"repository": "NVIDIA/TensorRT", "tag": tag, "commit": commit,
                       "files": [*sources, init]},
            "module": sorted(set(module)), "classes": dict(sorted(classes.items()))}


def main(argv: list[str]) -> int:
    git_dir, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for tag in argv[2:] or DEFAULT_TAGS:
        data = table(git_dir, tag)
        (out / f"{tag.lstrip('v')}.json").write_text(json.dumps(data, indent=1) + "\n")
        print(f"{tag}: {len(data['classes'])} classes, {len(data['module'])} module names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
