#!/usr/bin/env python3
"""Find every translatable string and compare it with the catalogues.

Translatable strings are the literal first arguments of `t("...")` and `N_("...")`, and the
first two of `tn("singular", "plural", n)`, in the Jinja templates (src/removeany/web/templates)
and in Python code under src/removeany. A `t()` whose argument is not a literal is followed
where that is simple: a module-level constant (`t(LABEL)`), a constant table
(`t(LABELS.get(key, key))`, `t(LABELS[key])`) or a loop over one
(`{k: t(v) for k, v in LABELS.items()}`, `[t(label) for _, label in SIZES]`); anything else is
reported as "dynamic" so someone can check it by hand.

Usage (from the repository root):

    .venv/bin/python scripts/extract_strings.py            # summary + missing zh-CN strings
    .venv/bin/python scripts/extract_strings.py --check    # exit 1 when any is missing
    .venv/bin/python scripts/extract_strings.py --update   # add missing keys ("" = to do)
    .venv/bin/python scripts/extract_strings.py --json     # every string with its places
    .venv/bin/python scripts/extract_strings.py --errors   # also domain error messages

`--update` writes the missing strings into src/removeany/locales/zh_CN.json with empty
values; fill them in (an empty value still counts as missing, and pages show English).
`--errors` lists the English messages of errors raised in the code (f-strings become
`{placeholder}` patterns) that have no translation yet: pages translate those when the
catalogue has them (see i18n.py `error_text`), but they are optional.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, nodes

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "removeany"
TEMPLATES = SRC / "web" / "templates"
LOCALES = SRC / "locales"
MARKERS = {"t", "N_", "tn"}
# How many leading arguments of each marker are translatable text.
TEXT_ARGS = {"t": 1, "N_": 1, "tn": 2}
ERROR_NAMES = {"Forbidden", "NotFound", "Conflict", "Unauthorized"}


@dataclass
class Found:
    strings: dict[str, list[str]] = field(default_factory=dict)
    dynamic: list[str] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, text: str, where: str) -> None:
        self.strings.setdefault(text, []).append(where)

    def add_error(self, text: str, where: str) -> None:
        self.errors.setdefault(text, []).append(where)


# --- Python ---------------------------------------------------------------------------------


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _pattern(node: ast.AST) -> str | None:
    """A literal, or an f-string as a `{placeholder}` pattern."""
    text = _str(node)
    if text is not None:
        return text
    if not isinstance(node, ast.JoinedStr):
        return None
    out, used = "", set()
    for part in node.values:
        literal = _str(part)
        if literal is not None:
            out += literal.replace("{", "{{").replace("}", "}}")
            continue
        assert isinstance(part, ast.FormattedValue)
        value = part.value
        name = (
            value.id
            if isinstance(value, ast.Name)
            else value.attr
            if isinstance(value, ast.Attribute)
            else "value"
        )
        base, n = name, 2
        while name in used:
            name, n = f"{base}{n}", n + 1
        used.add(name)
        out += "{" + name + "}"
    return out


def _sentence(text: str | None) -> bool:
    """Looks like a message for a person (not a code or an identifier)."""
    stripped = (text or "").strip()
    return " " in stripped and stripped[-1:] in ".!?)"


def _module_constants(module: str) -> dict[str, ast.AST]:
    """Module-level NAME = value assignments of one of our modules, by dotted name."""
    path = SRC.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        return {}
    found: dict[str, ast.AST] = {}
    for stmt in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id.isupper():
            found[target.id] = value
    return found


def _imported_constants(stmt: ast.ImportFrom) -> dict[str, ast.AST]:
    """Tables imported by name from another of our modules (`from removeany.x import TABLE`)."""
    if not stmt.module or not stmt.module.startswith("removeany"):
        return {}
    wanted = {alias.name: alias.asname or alias.name for alias in stmt.names}
    constants = _module_constants(stmt.module)
    return {wanted[name]: value for name, value in constants.items() if name in wanted}


class _PythonVisitor:
    def __init__(self, tree: ast.Module, where: str, found: Found) -> None:
        self.where = where
        self.found = found
        self.constants: dict[str, ast.AST] = {}
        for stmt in tree.body:
            target: ast.AST | None = None
            value: ast.AST | None = None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign):
                target, value = stmt.target, stmt.value
            if isinstance(target, ast.Name) and value is not None:
                self.constants[target.id] = value
            if isinstance(stmt, ast.ImportFrom):
                self.constants.update(_imported_constants(stmt))
        self.visit(tree, {}, in_raise=False)

    # Strings a constant holds: all values of a table, or one column of a list of tuples.
    def _strings_of(self, node: ast.AST, index: int | None = None) -> list[str] | None:
        text = _str(node)
        if text is not None:
            return [text]
        if isinstance(node, ast.Dict):
            out: list[str] = []
            for value in node.values:
                got = self._strings_of(value)
                if got is None:
                    return None
                out += got
            return out
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            out = []
            for elt in node.elts:
                if index is not None and isinstance(elt, ast.Tuple):
                    if index >= len(elt.elts):
                        return None
                    elt = elt.elts[index]
                got = self._strings_of(elt)
                if got is None:
                    return None
                out += got
            return out
        name = _callee(node) if isinstance(node, ast.Call) else None
        if isinstance(node, ast.Call) and name in MARKERS and node.args:
            out = []
            for arg in node.args[: TEXT_ARGS[name]]:
                got = self._strings_of(arg)
                if got is None:
                    return None
                out += got
            return out
        return None

    def _resolve(
        self, node: ast.AST, scope: dict[str, tuple[ast.AST, int | None]]
    ) -> list[str] | None:
        text = _str(node)
        if text is not None:
            return [text]
        if isinstance(node, ast.Name):
            if node.id in scope:
                source, index = scope[node.id]
                return self._resolve_iter(source, index)
            if node.id in self.constants:
                return self._strings_of(self.constants[node.id])
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr == "get" and isinstance(owner, ast.Name):
                table = self.constants.get(owner.id)
                if isinstance(table, ast.Dict):
                    return self._strings_of(table)
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            table = self.constants.get(node.value.id)
            return self._strings_of(table) if table is not None else None
        if isinstance(node, ast.IfExp):
            a, b = self._resolve(node.body, scope), self._resolve(node.orelse, scope)
            return None if a is None or b is None else a + b
        if isinstance(node, ast.BoolOp):
            out: list[str] = []
            for value in node.values:
                got = self._resolve(value, scope)
                if got is None:
                    return None
                out += got
            return out
        return None

    def _resolve_iter(self, source: ast.AST, index: int | None) -> list[str] | None:
        if (
            isinstance(source, ast.Call)
            and isinstance(source.func, ast.Attribute)
            and isinstance(source.func.value, ast.Name)
        ):
            table = self.constants.get(source.func.value.id)
            if not isinstance(table, ast.Dict):
                return None
            if source.func.attr == "values" or (source.func.attr == "items" and index == 1):
                return self._strings_of(table)
            return None
        if isinstance(source, ast.Name) and source.id in self.constants:
            return self._strings_of(self.constants[source.id], index)
        return None

    def visit(
        self, node: ast.AST, scope: dict[str, tuple[ast.AST, int | None]], *, in_raise: bool
    ) -> None:
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            inner = dict(scope)
            for gen in node.generators:
                self.visit(gen.iter, inner, in_raise=in_raise)
                if isinstance(gen.target, ast.Name):
                    inner[gen.target.id] = (gen.iter, None)
                elif isinstance(gen.target, ast.Tuple):
                    for i, elt in enumerate(gen.target.elts):
                        if isinstance(elt, ast.Name):
                            inner[elt.id] = (gen.iter, i)
                for cond in gen.ifs:
                    self.visit(cond, inner, in_raise=in_raise)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for part in parts:
                self.visit(part, inner, in_raise=in_raise)
            return
        if isinstance(node, ast.Raise):
            in_raise = True
        if isinstance(node, ast.Call):
            self._call(node, scope, in_raise)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope, in_raise=in_raise)

    def _call(
        self, node: ast.Call, scope: dict[str, tuple[ast.AST, int | None]], in_raise: bool
    ) -> None:
        name = _callee(node)
        where = f"{self.where}:{node.lineno}"
        if name in MARKERS and node.args:
            for arg in node.args[: TEXT_ARGS[name]]:
                got = self._resolve(arg, scope)
                if got is None:
                    kind = "f-string" if isinstance(arg, ast.JoinedStr) else "expression"
                    self.found.dynamic.append(f"{where}: {name}() of a {kind}")
                for text in got or ():
                    self.found.add(text, where)
            return
        if not name or not name[:1].isupper():
            return
        if in_raise or name.endswith("Error") or name in ERROR_NAMES:
            for arg in node.args:
                message = _pattern(arg)
                if message is not None and _sentence(message):
                    self.found.add_error(message, where)


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def scan_python(path: Path, found: Found, *, where: str | None = None) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    _PythonVisitor(tree, where or _where(path), found)


# --- templates ------------------------------------------------------------------------------


def scan_template(path: Path, found: Found, env: Environment, *, where: str | None = None) -> None:
    tree = env.parse(path.read_text(encoding="utf-8"), name=path.name)
    where = where or _where(path)
    for call in tree.find_all(nodes.Call):
        if not isinstance(call.node, nodes.Name) or call.node.name not in MARKERS:
            continue
        texts = call.args[: TEXT_ARGS[call.node.name]]
        for arg in texts or [None]:
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                found.add(arg.value, f"{where}:{call.lineno}")
            else:
                found.dynamic.append(f"{where}:{call.lineno}: {call.node.name}() of an expression")


def python_files() -> Iterator[Path]:
    yield from sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def template_files() -> Iterator[Path]:
    yield from sorted(TEMPLATES.glob("*.html"))


def extract() -> Found:
    found = Found()
    env = Environment()
    for path in template_files():
        scan_template(path, found, env)
    for path in python_files():
        scan_python(path, found)
    return found


# --- catalogues -----------------------------------------------------------------------------


def load_catalogue(locale: str = "zh-CN") -> dict[str, str]:
    path = LOCALES / f"{locale.replace('-', '_')}.json"
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def save_catalogue(data: dict[str, str], locale: str = "zh-CN") -> Path:
    path = LOCALES / f"{locale.replace('-', '_')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = dict(sorted(data.items(), key=lambda kv: kv[0].lower()))
    path.write_text(json.dumps(ordered, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def missing(strings: Iterable[str], catalogue: dict[str, str]) -> list[str]:
    return sorted({s for s in strings if not str(catalogue.get(s, "")).strip()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locale", default="zh-CN")
    parser.add_argument("--check", action="store_true", help="exit 1 when strings are missing")
    parser.add_argument("--update", action="store_true", help='add missing keys with ""')
    parser.add_argument("--json", action="store_true", help="print every string and its places")
    parser.add_argument("--errors", action="store_true", help="also list error messages")
    args = parser.parse_args(argv)

    found = extract()
    catalogue = load_catalogue(args.locale)
    if args.json:
        print(json.dumps(found.strings, ensure_ascii=False, indent=2))
        return 0
    todo = missing(found.strings, catalogue)
    print(f"{len(found.strings)} translatable strings; {len(todo)} missing for {args.locale}.")
    for text in todo:
        print(f"  missing: {text!r}  ({found.strings[text][0]})")
    for where in found.dynamic:
        print(f"  dynamic (check by hand): {where}")
    if args.errors:
        optional = missing(found.errors, catalogue)
        print(f"{len(found.errors)} error messages; {len(optional)} without a translation.")
        for text in optional:
            print(f"  error: {text!r}  ({found.errors[text][0]})")
    if args.update and todo:
        for text in todo:
            catalogue.setdefault(text, "")
        print(f"wrote {len(todo)} empty entries to {save_catalogue(catalogue, args.locale)}")
    return 1 if args.check and todo else 0


if __name__ == "__main__":
    sys.exit(main())
