"""Make the `tensorrt-stubs` package usable by mypy.

The PyPI package (every 10.x release checked) ships .pyi files that are not
valid Python: parameters named `in`, and parameters without a default after
ones with a default. It also has no py.typed marker for `tensorrt`. This copies
the stubs into OUT_DIR, repairs exactly those two faults line by line, and
fails if anything else keeps them from parsing, so mypy reads real TensorRT 10
signatures from `mypy_path`.

usage: python .ci/tensorrt_stubs.py SITE_PACKAGES OUT_DIR
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

_IN_PARAM = re.compile(r"(?<=[(,\s])in(?=:)")


def _fix_defaults(line: str) -> str:
    """Give `= ...` to parameters that follow a defaulted one on a `def` line."""
    head, _, rest = line.partition("(")
    params, close, tail = rest.rpartition(")")
    seen_default = False
    fixed = []
    for param in params.split(", "):
        if "=" in param:
            seen_default = True
        elif seen_default and ":" in param and not param.lstrip().startswith("*"):
            param = f"{param} = ..."
        fixed.append(param)
    return f"{head}({', '.join(fixed)}{close}{tail}"


def repair(source: str, name: str, max_fixes: int = 200) -> str:
    lines = source.splitlines(keepends=True)
    for _ in range(max_fixes):
        try:
            ast.parse("".join(lines), filename=name)
            return "".join(lines)
        except SyntaxError as err:
            index = (err.lineno or 1) - 1
            before = lines[index]
            after = _fix_defaults(_IN_PARAM.sub("in_", before)) if before.lstrip().startswith("def ") else before
            if after == before:
                raise SystemExit(f"{name}:{index + 1}: unrepairable stub line: {before.strip()}") from err
            lines[index] = after
    raise SystemExit(f"{name}: more than {max_fixes} broken lines; is this tensorrt-stubs 10.x?")


def main(site_packages: Path, out_dir: Path) -> None:
    for package in ("tensorrt", "tensorrt_bindings"):
        src = site_packages / package
        if not src.is_dir():
            raise SystemExit(f"{src} not found: install tensorrt-stubs (pip install --no-deps tensorrt-stubs)")
        dst = out_dir / package
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for stub in src.glob("*.pyi"):
            (dst / stub.name).write_text(repair(stub.read_text(), str(stub)))
    print(f"tensorrt stubs ready in {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
