"""bench/http_server.py: the servers' command lines and the summary table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.http_server import APP_FACTORY, VARIANTS, Figures, Tls, server_command, summary_table

TLS = Tls(Path("/tls/cert.pem"), Path("/tls/key.pem"), Path("/tls/ca.pem"))


@pytest.mark.parametrize("variant", [*VARIANTS, "base"])
def test_every_variant_serves_the_app_over_tls_on_its_port(variant: str) -> None:
    command = " ".join(server_command(variant, 18443, TLS))
    assert "18443" in command
    if variant in ("uvicorn", "base"):
        assert command.endswith("-m gateway api --host 127.0.0.1 --port 18443")  # trunkline api itself
    elif variant != "uvicorn-plain":  # that one reads the certificate from the environment
        assert APP_FACTORY in command
        assert str(TLS.cert) in command
        assert str(TLS.key) in command


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown"):
        server_command("nginx", 1, TLS)


def test_summary_table() -> None:
    results = [
        Figures("uvicorn", "sms", 5000, 0, 1000.0, 0.8, 1.9),
        Figures("uvicorn", "sms", 5000, 0, 1100.0, 0.7, 1.9),
        Figures("granian", "sms", 5000, 0, 990.0, 0.9, 1.9),
    ]
    table = summary_table(results, ["uvicorn", "granian", "hypercorn"], ["sms"])
    assert table.splitlines() == [
        "| server | sms: requests/s | sms: CPU ms/request |",
        "|---|---:|---:|",
        "| uvicorn | 1,000\u20131,100 | 0.750 (0.700\u20130.800) |",
        "| granian | 990 | 0.900 |",
        "| hypercorn | \u2014 | \u2014 |",
    ]
