"""Every TensorRT name the backend uses, against the API of each TensorRT that JetPack ships.

The tables in tensorrt_api/ list what NVIDIA's Python bindings expose at the tags 8.5.3 (JetPack 5.1), v8.6.1
(JetPack 6.0) and v10.3.0 (JetPack 6.1/6.2), read from their pybind11 sources by .ci/tensorrt_api_tables.py.
This test walks tensorrt_backend.py's syntax tree and checks each `trt.X`, `trt.X.Y` and each attribute of a
TensorRT object (builder, network, parser, config, runtime, engine, execution context, timing cache)
against each table, taking the version branches into account: the body of `if trt_major() >= 10:` counts
for 10.3 only (and what follows a `return` in it for 8.x only), and what is reached only through
`getattr(trt, NAME, None)` counts only where NAME exists. mypy checks against 10.13's stubs, which cannot
tell a 10.3 user that a call is newer than their TensorRT; this can.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKEND = REPO / "mtl_perception" / "runtime" / "backends" / "tensorrt_backend.py"
TABLES = Path(__file__).resolve().parent / "tensorrt_api"
VERSIONS = ("8.5.3", "8.6.1", "10.3.0")

# What the bindings' methods return (their docstrings and signatures): how an object's type is followed
RETURNS = {
    ("Builder", "create_network"): "INetworkDefinition",
    ("Builder", "create_builder_config"): "IBuilderConfig",
    ("Builder", "create_optimization_profile"): "IOptimizationProfile",
    ("Runtime", "deserialize_cuda_engine"): "ICudaEngine",
    ("ICudaEngine", "create_execution_context"): "IExecutionContext",
    ("IBuilderConfig", "create_timing_cache"): "ITimingCache",
    ("IBuilderConfig", "get_timing_cache"): "ITimingCache",
    ("ICudaEngine", "get_tensor_shape"): "Dims",
}
CONSTRUCTORS = {"Builder", "Runtime", "OnnxParser"}


def load(version: str) -> dict:
    return json.loads((TABLES / f"{version}.json").read_text())


def members(table: dict, cls: str) -> set[str]:
    """A class's names with its bases', as Python sees them (pybind11 classes have __init__)."""
    entry = table["classes"][cls]
    names = set(entry["members"]) | {"__init__"} | {n.split(".", 1)[1] for n in table["classes"]
                                                   if n.startswith(cls + ".") and n.count(".") == 1}
    for base in entry["bases"]:
        names |= members(table, base)
    return names


@dataclass(frozen=True)
class Use:
    """One TensorRT name the backend uses: `trt.X` (cls None), `trt.X.Y`, or attribute Y of an X object."""

    line: int
    owner: str | None  # a class of the tables, or None for the module
    name: str
    only_from: int | None = None  # used only on TensorRT major >= this
    only_before: int | None = None  # used only on TensorRT major < this
    needs: str | None = None  # used only where this module name exists (a getattr guard)

    def applies(self, version: str, table: dict) -> bool:
        major = int(version.split(".")[0])
        if self.only_from is not None and major < self.only_from:
            return False
        if self.only_before is not None and major >= self.only_before:
            return False
        return self.needs is None or self.needs in table["module"] or self.needs in table["classes"]


@dataclass
class Scope:
    only_from: int | None = None
    only_before: int | None = None
    needs: str | None = None
    types: dict[str, str] = field(default_factory=dict)  # variable -> TensorRT class
    optional: dict[str, str] = field(default_factory=dict)  # variable -> the name it is None without

    def inner(self, **changes: object) -> Scope:
        values = {"only_from": self.only_from, "only_before": self.only_before, "needs": self.needs,
                  "types": dict(self.types), "optional": dict(self.optional)}
        values.update(changes)
        return Scope(**values)  # type: ignore[arg-type]


def _trt_chain(node: ast.AST | None) -> list[str] | None:
    """["X", "Y"] for trt.X.Y, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "trt" and parts:
        return parts[::-1]
    return None


def _major_guard(test: ast.expr) -> tuple[int, bool] | None:
    """(N, True) for `trt_major() >= N`, (N, False) for `trt_major() < N`."""
    if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Call) and isinstance(test.left.func, ast.Name)
            and test.left.func.id == "trt_major" and isinstance(test.comparators[0], ast.Constant)):
        value, op = int(test.comparators[0].value), test.ops[0]
        if isinstance(op, ast.GtE):
            return value, True
        if isinstance(op, ast.Lt):
            return value, False
    return None


def _getattr_names(function: ast.FunctionDef) -> list[str]:
    """The NAMEs of `getattr(trt, "NAME", None)` in a function."""
    return [node.args[1].value for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and isinstance(node.args[0], ast.Name) and node.args[0].id == "trt"
            and isinstance(node.args[1], ast.Constant)]


class BackendWalker:
    """Collects every Use in the backend's source."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.uses: list[Use] = []
        self.self_types: dict[str, str] = {}
        functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
        self.returns = {f.name: chain[-1] for f in functions if (chain := _trt_chain(f.returns))}
        # functions that hand out None where a name is missing: def f(): base = getattr(trt, "N", None) ...
        self.guarded_by = {f.name: names[0] for f in functions if (names := _getattr_names(f))}

    def walk(self) -> list[Use]:
        for _ in range(2):  # the second pass knows the types of self's attributes, wherever they are set
            self.uses = []
            self._block(self.tree.body, Scope())
        return self.uses

    def _type_of(self, node: ast.expr, scope: Scope) -> str | None:
        if isinstance(node, ast.Name):
            return scope.types.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return self.self_types.get(node.attr)
        if isinstance(node, ast.Call):
            chain = _trt_chain(node.func)
            if chain and len(chain) == 1 and chain[0] in CONSTRUCTORS:
                return chain[0]
            if isinstance(node.func, ast.Attribute):
                owner = self._type_of(node.func.value, scope)
                if owner is not None:
                    return RETURNS.get((owner, node.func.attr))
                if isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
                    return self.returns.get(node.func.attr)
        return None

    def _record(self, line: int, owner: str | None, name: str, scope: Scope) -> None:
        self.uses.append(Use(line, owner, name, scope.only_from, scope.only_before, scope.needs))

    def _expr(self, node: ast.AST, scope: Scope) -> None:
        inner = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Attribute):
                continue
            chain = _trt_chain(sub)
            if chain is not None:
                if id(sub) in inner:
                    continue  # part of a longer trt.X.Y: recorded with it
                self._record(sub.lineno, None, chain[0], scope)
                # members of classes and enums only (CamelCase): trt.__version__.split is str's
                for i in range(1, len(chain) if chain[0][:1].isupper() else 1):
                    self._record(sub.lineno, ".".join(chain[:i]), chain[i], scope)
                continue
            owner = self._type_of(sub.value, scope)
            if owner is not None:
                self._record(sub.lineno, owner, sub.attr, scope)

    def _block(self, body: list[ast.stmt], scope: Scope) -> None:
        scope = scope.inner()
        for stmt in body:
            if isinstance(stmt, ast.If) and (guard := _major_guard(stmt.test)) is not None:
                major, at_least = guard
                when_true = scope.inner(only_from=major) if at_least else scope.inner(only_before=major)
                when_false = scope.inner(only_before=major) if at_least else scope.inner(only_from=major)
                self._block(stmt.body, when_true)
                self._block(stmt.orelse, when_false)
                if stmt.body and isinstance(stmt.body[-1], ast.Return):
                    scope = when_false  # what follows runs only where the guard is false
                continue
            if isinstance(stmt, ast.If) and (needs := self._none_guard(stmt.test, scope)) is not None:
                self._block(stmt.body, scope.inner(needs=needs))
                self._block(stmt.orelse, scope)
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
                inner = scope.inner()
                if isinstance(stmt, ast.FunctionDef):
                    for arg in stmt.args.args:
                        chain = _trt_chain(arg.annotation)
                        if chain:
                            inner.types[arg.arg] = ".".join(chain)
                    if stmt.name in self.guarded_by:  # its body past the getattr guard needs the name
                        inner.needs = self.guarded_by[stmt.name]
                for base in getattr(stmt, "bases", []):
                    self._expr(base, scope)
                self._block(stmt.body, inner)
                continue
            if isinstance(stmt, ast.Assign):
                self._assign(stmt, scope)
            self._statement(stmt, scope)

    def _assign(self, stmt: ast.Assign, scope: Scope) -> None:
        kind = self._type_of(stmt.value, scope)
        call = stmt.value.func if isinstance(stmt.value, ast.Call) else None
        optional = self.guarded_by.get(call.id) if isinstance(call, ast.Name) else None
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                if kind is not None:
                    scope.types[target.id] = kind
                if optional is not None:
                    scope.optional[target.id] = optional
            elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                  and target.value.id == "self" and kind is not None):
                self.self_types[target.attr] = kind

    @staticmethod
    def _none_guard(test: ast.expr, scope: Scope) -> str | None:
        """The name that `if x is not None:` stands for, where x came from a getattr-guarded function."""
        if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and isinstance(test.ops[0], ast.IsNot)
                and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None):
            return scope.optional.get(test.left.id)
        return None

    def _statement(self, stmt: ast.stmt, scope: Scope) -> None:
        bodies = [getattr(stmt, f) for f in ("body", "orelse", "finalbody") if isinstance(getattr(stmt, f, None), list)]
        handlers = getattr(stmt, "handlers", [])
        if not bodies and not handlers:
            self._expr(stmt, scope)
            return
        for name in ("test", "iter", "target"):
            if isinstance(getattr(stmt, name, None), ast.AST):
                self._expr(getattr(stmt, name), scope)
        for item in getattr(stmt, "items", []):
            self._expr(item, scope)
        for body in bodies:
            self._block(body, scope)
        for handler in handlers:
            self._block(handler.body, scope)


@pytest.fixture(scope="module")
def uses() -> list[Use]:
    return BackendWalker(ast.parse(BACKEND.read_text())).walk()


def test_the_walk_finds_the_calls_it_must(uses: list[Use]) -> None:
    """The walker is only as good as what it sees: the calls every build and inference makes are among them."""
    seen = {(u.owner, u.name) for u in uses}
    for expected in [("Builder", "create_network"), ("IBuilderConfig", "set_timing_cache"),
                     ("IBuilderConfig", "get_timing_cache"), ("ICudaEngine", "get_tensor_name"),
                     ("IExecutionContext", "execute_async_v3"), ("IExecutionContext", "set_tensor_address"),
                     ("ITimingCache", "serialize"), ("OnnxParser", "parse"), ("Runtime", "deserialize_cuda_engine"),
                     ("MemoryPoolType", "WORKSPACE"), (None, "IInt8MinMaxCalibrator"), (None, "nptype"),
                     ("IBuilderConfig", "progress_monitor"), ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH")]:
        assert expected in seen, expected
    monitor = next(u for u in uses if u.name == "progress_monitor")
    assert monitor.needs == "IProgressMonitor"  # reached only where getattr(trt, "IProgressMonitor") is not None


@pytest.mark.parametrize("version", VERSIONS)
def test_every_tensorrt_name_exists_in_that_version(uses: list[Use], version: str) -> None:
    table = load(version)
    missing = []
    for use in uses:
        if not use.applies(version, table):
            continue
        if use.owner is None:
            if use.name not in table["module"] and use.name not in table["classes"]:
                missing.append(f"line {use.line}: trt.{use.name}")
        elif use.owner not in table["classes"]:
            missing.append(f"line {use.line}: trt.{use.owner} (for .{use.name})")
        elif use.name not in members(table, use.owner):
            missing.append(f"line {use.line}: {use.owner}.{use.name}")
    assert not missing, f"TensorRT {version} lacks: " + "; ".join(sorted(set(missing)))


def test_the_tables_know_the_differences_that_matter() -> None:
    """Facts of NVIDIA's sources the backend's branches rest on, so a wrong table cannot pass silently."""
    t85, t86, t103 = (load(v) for v in VERSIONS)
    assert "IProgressMonitor" not in t85["classes"] and "IProgressMonitor" not in t86["classes"]
    assert "progress_monitor" in members(t103, "IBuilderConfig")
    assert "progress_monitor" not in members(t86, "IBuilderConfig")
    for table in (t85, t86, t103):  # named tensors, execute_async_v3 and memory pools are already in 8.5
        assert {"execute_async_v3", "set_tensor_address"} <= members(table, "IExecutionContext")
        assert {"num_io_tensors", "get_tensor_name"} <= members(table, "ICudaEngine")
        assert {"IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator"} <= set(table["classes"])
    assert "execute_async_v2" in members(t86, "IExecutionContext")
    assert "execute_async_v2" not in members(t103, "IExecutionContext")  # removed in 10
    assert "build_engine" in members(t85, "Builder") and "build_engine" not in members(t103, "Builder")
    assert {t["source"]["tag"] for t in (t85, t86, t103)} == {"8.5.3", "v8.6.1", "v10.3.0"}


def _missing(source: str, version: str) -> list[str]:
    table = load(version)
    return [f"{u.owner}.{u.name}" for u in BackendWalker(ast.parse(source)).walk()
            if u.applies(version, table) and u.owner in table["classes"] and u.name not in members(table, u.owner)]


def test_a_call_outside_a_versions_api_is_caught() -> None:
    """The check can fail: the backend with a removed 8.x call, and with a 10.x-only call outside its guard."""
    source = BACKEND.read_text()
    assert not _missing(source, "8.5.3") and not _missing(source, "10.3.0")
    old_call = source.replace("            if not self.context.execute_async_v3(self.stream.handle):",
                              "            self.context.execute_async_v2([], self.stream.handle)\n"
                              "            if not self.context.execute_async_v3(self.stream.handle):")
    assert _missing(old_call, "10.3.0") == ["IExecutionContext.execute_async_v2"]
    assert not _missing(old_call, "8.6.1")
    unguarded = source.replace("        config = builder.create_builder_config()\n",
                               "        config = builder.create_builder_config()\n"
                               "        config.progress_monitor = None\n")
    assert _missing(unguarded, "8.5.3") == ["IBuilderConfig.progress_monitor"]
    assert not _missing(unguarded, "10.3.0")
