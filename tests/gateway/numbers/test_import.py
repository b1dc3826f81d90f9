"""Inventory import: a good file, a bad file (rejected whole, each bad line named), re-import,
purchased numbers left untouched; through the library, the CLI and the admin API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from gateway.core.db import Database, utcnow
from gateway.numbers import importer, inventory
from gateway.numbers.models import InventoryNumber, PurchasedNumber
from gateway.numbers.rules import IMPORT_COLUMNS
from gateway.numbers.sample import sample_rows, to_csv
from tests.gateway.numbers.conftest import admin_headers

HEADER = ",".join(IMPORT_COLUMNS)
GOOD = [
    "+14255550100,US,geographic,application,425,Redmond,WA,inbound+outbound,inbound+outbound,1.00,USD,acme",
    "+18005550100,US,tollFree,application,800,,,inbound,inbound+outbound,2.50,USD,acme",
    "+447400123456,GB,mobile,person,7400,,,none,inbound+outbound,0.90,GBP,acme",
]
BAD = [
    "+14255550101,US,geographic,application,425,Redmond,WA,inbound+outbound,inbound+outbound,1.00,USD,acme",
    "+1425555010,US,geographic,application,425,Redmond,WA,inbound,none,1.00,USD,acme",  # 3: short
    "+14255550102,GB,geographic,application,425,Redmond,WA,inbound,none,1.00,USD,acme",  # 4: country
    "+18005550101,US,geographic,application,800,,,inbound,none,1.00,USD,acme",  # 5: type
    "+14255550103,US,geographic,nobody,425,Redmond,WA,sideways,none,-1,US,acme",  # 6: many
    "+14255550101,US,geographic,application,425,Redmond,WA,inbound,none,1.00,USD,acme",  # 7: dup
    "+14255550104,US,geographic,application,425,Redmond,WA,inbound,none,1.00,USD,nosuch",  # 8: carrier
]


@pytest.fixture
def acme(database: Database) -> None:
    with database.session() as session:
        inventory.create_carrier(session, "acme", "sip", "test carrier")


def count(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(InventoryNumber)) or 0)


def test_good_file(database: Database, acme: None, tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_text("\n".join([HEADER, *GOOD]) + "\n")
    report = importer.import_file(database, path)
    assert report.accepted
    assert (report.rows, report.inserted, report.updated) == (3, 3, 0)
    with database.session() as session:
        rows, total = inventory.list_numbers(session, utcnow(), status="available")
        assert total == 3
        by_number = {n.phone_number: n for n, _ in rows}
    assert by_number["+18005550100"].phone_number_type == "tollFree"
    assert by_number["+447400123456"].currency_code == "GBP"
    assert str(by_number["+18005550100"].cost_amount) in ("2.5000", "2.5")


def test_bad_file_rejected_whole_with_line_numbers(database: Database, acme: None, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([HEADER, *BAD]) + "\n")
    report = importer.import_file(database, path, batch_size=1)  # line 2 would be written first
    assert not report.accepted
    assert count(database) == 0, "nothing of a rejected file is written"
    errors = {e.line: " ".join(e.problems) for e in report.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]
    assert "not a valid number" in errors[3]
    assert "belongs to US, not countryCode GB" in errors[4]
    assert "not plausibly geographic" in errors[5]
    assert "assignmentType" in errors[6]
    assert "calling" in errors[6]
    assert "costAmount" in errors[6]
    assert "currencyCode" in errors[6]
    assert "duplicate of line 2" in errors[7]
    assert "unknown carrier 'nosuch'" in errors[8]


def test_reimport_updates_but_leaves_purchased_numbers(
    database: Database, acme: None, tmp_path: Path
) -> None:
    path = tmp_path / "stock.csv"
    path.write_text("\n".join([HEADER, *GOOD]) + "\n")
    assert importer.import_file(database, path).accepted
    now = utcnow()
    with database.session() as session:  # someone bought the toll-free number
        from gateway.resources import service as resources

        owner = resources.create_resource(session, "owner", "https://x.test/")
        number = session.get(InventoryNumber, "+18005550100")
        assert number is not None
        number.status, number.free_at = "purchased", None
        session.add(
            PurchasedNumber(
                phone_number=number.phone_number,
                resource_id=owner.id,
                country_code="US",
                phone_number_type="tollFree",
                assignment_type="application",
                calling="inbound",
                sms="none",
                cost_amount=number.cost_amount,
                currency_code="USD",
                purchase_date=now,
            )
        )
    new = GOOD[0].replace("+14255550100", "+14255550199")
    path.write_text("\n".join([HEADER, *[line.replace(",USD,", ",EUR,") for line in GOOD], new]) + "\n")
    report = importer.import_file(database, path)
    assert report.accepted
    assert (report.inserted, report.updated, report.purchased_untouched) == (1, 2, ["+18005550100"])
    assert count(database) == 4
    with database.session() as session:
        assert session.get(InventoryNumber, "+14255550100").currency_code == "EUR"  # type: ignore[union-attr]
        assert session.get(InventoryNumber, "+18005550100").currency_code == "USD"  # type: ignore[union-attr]
        assert session.get(InventoryNumber, "+18005550100").status == "purchased"  # type: ignore[union-attr]


def test_jsonl_and_default_carrier(database: Database, acme: None, tmp_path: Path) -> None:
    path = tmp_path / "stock.jsonl"
    records = [dict(zip(IMPORT_COLUMNS, line.split(","), strict=True)) for line in GOOD]
    for record in records:
        del record["carrier"]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n{not json}\n")
    rejected = importer.import_file(database, path, "acme")
    assert not rejected.accepted
    assert [e.line for e in rejected.errors] == [4]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert importer.import_file(database, path, "acme").accepted
    assert count(database) == 3


def test_header_problems_reject_the_file(database: Database, acme: None, tmp_path: Path) -> None:
    path = tmp_path / "bad-header.csv"
    path.write_text("phoneNumber,countryCode,colour\n+14255550100,US,blue\n")
    with pytest.raises(importer.FileFormatError, match="missing columns: phoneNumberType"):
        importer.import_file(database, path)


def test_cli_import_and_list(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import app

    monkeypatch.setenv("TRUNKLINE_DATABASE_URL", database.url)
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))
    from gateway.core.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["carriers", "add", "acme", "--kind", "smpp"]).exit_code == 0
    path = tmp_path / "stock.csv"
    path.write_text(to_csv(list(sample_rows(5))))
    result = runner.invoke(app, ["numbers", "import", str(path), "--carrier", "acme"])
    assert result.exit_code == 0, result.output
    assert "10 new" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([HEADER, *BAD]) + "\n")
    rejected = runner.invoke(app, ["numbers", "import", str(bad)])
    assert rejected.exit_code == 1
    assert "line 3" in rejected.output
    assert "line 8" in rejected.output
    listed = runner.invoke(app, ["numbers", "list", "--status", "available", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["total"] == 10
    purchased = runner.invoke(app, ["numbers", "list", "--status", "purchased", "--json"])
    assert json.loads(purchased.stdout)["total"] == 0
    carriers = runner.invoke(app, ["carriers", "list", "--json"])
    assert json.loads(carriers.stdout)[0]["numbers"] == 10
    assert runner.invoke(app, ["numbers", "list", "--status", "lost"]).exit_code == 2


def test_admin_api(client: TestClient) -> None:
    assert client.post("/admin/carriers", json={"name": "zeta", "kind": "sip"}).status_code == 401
    created = client.post("/admin/carriers", json={"name": "zeta", "kind": "sip"}, headers=admin_headers())
    assert created.status_code == 201, created.text
    good = "\n".join([HEADER, *[line.replace(",acme", ",zeta") for line in GOOD]]) + "\n"
    imported = client.post(
        "/admin/numbers:import", content=good, headers={**admin_headers(), "content-type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["inserted"] == 3
    bad = "\n".join([HEADER, *BAD]) + "\n"
    rejected = client.post(
        "/admin/numbers:import", content=bad, headers={**admin_headers(), "content-type": "text/csv"}
    )
    assert rejected.status_code == 400
    assert [e["line"] for e in rejected.json()["report"]["errors"]] == [
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    ]  # acme is unknown here
    listed = client.get("/admin/numbers", params={"status": "available"}, headers=admin_headers()).json()
    assert listed["total"] == 3
    assert {n["carrier"] for n in listed["value"]} == {"zeta"}
    assert client.delete("/admin/carriers/zeta", headers=admin_headers()).status_code == 409


LATIN1 = ("\n".join([HEADER, GOOD[0], GOOD[1].replace(",,,", ",Montréal,,"), GOOD[2]]) + "\n").encode(
    "latin-1"
)


def _assert_not_utf8_sentence(text: str) -> None:
    words = " ".join(text.split())
    assert "is not UTF-8 text: line 3 has the byte 0xE9" in words
    assert "Save it as UTF-8" in words
    assert "codec" not in words
    assert "position" not in words


def test_a_file_that_is_not_utf8_gets_a_sentence(
    database: Database, acme: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(LATIN1)
    with pytest.raises(importer.FileFormatError) as caught:
        importer.import_file(database, path)
    _assert_not_utf8_sentence(str(caught.value))

    from gateway.cli import app
    from gateway.core.settings import get_settings

    monkeypatch.setenv("TRUNKLINE_DATABASE_URL", database.url)
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["numbers", "import", str(path)])
    assert result.exit_code == 1
    assert "rejected:" in result.output
    _assert_not_utf8_sentence(result.output)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(InventoryNumber)) == 0


def test_the_admin_api_says_the_same_of_a_body_that_is_not_utf8(client: TestClient) -> None:
    response = client.post(
        "/admin/numbers:import", content=LATIN1, headers={**admin_headers(), "content-type": "text/csv"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidImportFile"
    _assert_not_utf8_sentence(response.json()["error"]["message"])


def test_import_help_and_docs_give_each_columns_values() -> None:
    from gateway.cli import app
    from gateway.numbers.rules import ASSIGNMENT_TYPES, CAPABILITY_VALUES, PHONE_NUMBER_TYPES

    result = CliRunner().invoke(app, ["numbers", "import", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    help_text = " ".join(result.output.replace("│", " ").split())
    docs = (Path(__file__).parents[3] / "docs" / "numbers.md").read_text()
    for values in (PHONE_NUMBER_TYPES, ASSIGNMENT_TYPES, CAPABILITY_VALUES):
        assert " | ".join(values) in help_text
        assert " \\| ".join(values) in docs or " | ".join(values) in docs
    for column in IMPORT_COLUMNS:
        assert f"{column}" in help_text
        assert f"`{column}`" in docs
    assert "UTF-8" in help_text
    assert "UTF-8" in docs
