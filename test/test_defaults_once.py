"""Each default of perception_node lives once, in config/jetson.yaml: no literal copy of one in the code.

The check reads the package's and the launch file's syntax trees: a dataclass field, an assignment, a keyword
argument or an argparse option named after a parameter (or its --flag) whose value is a literal equal to
that parameter's default in the YAML is a second copy, which a newcomer would change without the other."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _yaml_defaults() -> dict[str, object]:
    return yaml.safe_load((REPO / "config" / "jetson.yaml").read_text())["/**"]["ros__parameters"]


def _literal(node: ast.AST | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return _NOT_LITERAL


_NOT_LITERAL = object()


def second_copies(source: str, defaults: dict[str, object]) -> list[str]:
    """'line: name = value' for every literal copy of a default in the source."""
    found = []

    def check(name: str, value: ast.AST | None, line: int) -> None:
        literal = _literal(value)
        if name in defaults and literal is not _NOT_LITERAL and type(literal) is type(defaults[name]) \
                and literal == defaults[name]:
            found.append(f"{line}: {name} = {literal!r}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            check(node.target.id, node.value, node.lineno)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    check(target.id.lower(), node.value, node.lineno)
        elif isinstance(node, ast.Call):
            flag = node.args[0] if node.args and isinstance(node.args[0], ast.Constant) else None
            option = str(flag.value).lstrip("-").replace("-", "_") if flag is not None and \
                str(flag.value).startswith("--") else None
            for keyword in node.keywords:
                if keyword.arg == "default" and option is not None:
                    check(option, keyword.value, node.lineno)
                elif keyword.arg is not None:
                    check(keyword.arg, keyword.value, node.lineno)
    return sorted(found, key=lambda text: int(text.split(":")[0]))


def test_no_default_of_the_yaml_is_written_again_in_the_code() -> None:
    defaults = _yaml_defaults()
    sources = sorted((REPO / "mtl_perception").rglob("*.py")) + sorted((REPO / "launch").glob("*.py"))
    copies = [f"{path.relative_to(REPO)}:{copy}" for path in sources
              for copy in second_copies(path.read_text(), defaults)]
    assert not copies, "defaults written again beside config/jetson.yaml (derive them from it):\n" + "\n".join(copies)


def test_the_check_finds_each_kind_of_copy() -> None:
    """The checker itself, on code that copies defaults each way it knows (and on code that does not)."""
    defaults = {"score_threshold": 0.3, "precision": "fp16", "max_detections": 100}
    source = (
        "from dataclasses import dataclass\n"
        "@dataclass\nclass C:\n    score_threshold: float = 0.3\n"
        "PRECISION = 'fp16'\n"
        "options = dict(max_detections=100)\n"
        "parser.add_argument('--score-threshold', type=float, default=0.3)\n"
        "ok = dict(max_detections=7, precision=other, score_threshold=0.30000001)\n"
    )
    assert second_copies(source, defaults) == ["4: score_threshold = 0.3", "5: precision = 'fp16'",
                                               "6: max_detections = 100", "7: score_threshold = 0.3"]


def test_readme_parameter_table_is_the_declarations_and_the_yaml() -> None:
    """The README's table is made from ros/parameters.py and config/jetson.yaml; a change to either without
    regenerating it (`python -m mtl_perception.ros.parameters`) fails here."""
    from mtl_perception.ros.parameters import parameter_table

    readme = (REPO / "README.md").read_text()
    start = readme.index("<!-- parameter table: python -m mtl_perception.ros.parameters -->\n")
    end = readme.index("\n<!-- end of parameter table -->")
    assert readme[readme.index("\n", start) + 1:end] == parameter_table()
    from mtl_perception.ros.parameters import PARAMETERS

    assert parameter_table().count("\n| `") == len(PARAMETERS)  # a row per parameter, unset ones too
