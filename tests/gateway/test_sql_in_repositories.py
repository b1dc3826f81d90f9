"""SQL statements of every domain are built in its repository module only: elsewhere in the
domains nothing imports SQLAlchemy's statement builders (services hold the rules and call the
repository)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
DOMAINS = ("calls", "events", "identity", "numbers", "relay", "resources", "sms")
# Building statements or SQL expressions; Session, exceptions and typing stay allowed.
BUILDERS = {"select", "update", "delete", "insert", "text", "func", "and_", "or_", "bindparam", "literal"}


def _outside_repositories() -> list[Path]:
    modules = []
    for domain in DOMAINS:
        for path in sorted((GATEWAY / domain).rglob("*.py")):
            relative = path.relative_to(GATEWAY / domain)
            if relative.parts[0] in ("repository", "repository.py", "models.py"):
                continue
            modules.append(path)
    return modules


def _statement_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("sqlalchemy.dialects"):
                found.append(node.module)
            elif node.module in ("sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression"):
                found.extend(alias.name for alias in node.names if alias.name in BUILDERS)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names if alias.name.startswith("sqlalchemy"))
    return found


def test_the_domains_have_modules_to_check() -> None:
    checked = {path.relative_to(GATEWAY).as_posix() for path in _outside_repositories()}
    expected = {
        "numbers/importer.py",
        "numbers/operations.py",
        "resources/keys.py",
        "relay/service.py",
        "sms/send.py",
        "events/deliveries.py",
        "calls/service.py",
    }
    assert expected <= checked


@pytest.mark.parametrize("path", _outside_repositories(), ids=lambda p: p.relative_to(GATEWAY).as_posix())
def test_no_statement_is_built_outside_a_repository(path: Path) -> None:
    assert _statement_imports(path) == []
