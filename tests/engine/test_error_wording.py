"""Every engine error that asks for an upload also says what to do with a local file."""

from __future__ import annotations

import ast
from pathlib import Path

import removeany.engine

ENGINE = Path(removeany.engine.__file__).parent


def _text(node: ast.expr) -> str:
    """The literal text of a string or f-string (placeholders left out)."""
    return "".join(
        part.value
        for part in ast.walk(node)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
    )


def test_each_upload_sentence_has_a_local_one() -> None:
    raised = 0
    for source in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ImageError"
            ):
                continue
            raised += 1
            where = f"{source.relative_to(ENGINE)}:{node.lineno}"
            message = _text(node.args[1])
            local = next((kw.value for kw in node.keywords if kw.arg == "local"), None)
            if "upload" in message.lower():
                assert local is not None, f"{where}: asks for an upload and has no local="
            if local is not None:
                assert "upload" not in _text(local).lower(), f"{where}: local= asks for an upload"
    assert raised > 10
