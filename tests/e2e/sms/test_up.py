"""``trunkline up`` with an SMPP config file: SQLite, no Redis, the SMPP process among its roles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from azure.communication.sms import SmsClient

from gateway.core.db import Database
from gateway.sms.models import SmsMessage
from tests.e2e.helpers import free_port, tcp_listening
from tests.gateway.events.harness import wait_until
from tests.gateway.sms.support import give_number
from tests.support.smsc import SmscProcess, smsc_available


def test_up_sends_sms_from_its_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = smsc_available()
    if reason:
        pytest.fail(reason, pytrace=False)
    with SmscProcess.start(receipts="immediate") as smsc:
        config = tmp_path / "smpp.toml"
        config.write_text(
            f'[[connections]]\nname = "carrier"\nhost = "{smsc.host}"\nport = {smsc.port}\n'
            f'system_id = "{smsc.system_id}"\npassword = "{smsc.password}"\n'
            '[[routes]]\nprefix = "+"\nconnection = "carrier"\n'
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
        env.update(
            TRUNKLINE_DATA_DIR=str(tmp_path / "data"),
            TRUNKLINE_SMPP_CONFIG_FILE=str(config),
            TRUNKLINE_API_PORT=str(port),
            TRUNKLINE_LOG_LEVEL="WARNING",
            XDG_DATA_HOME=str(tmp_path / "xdg"),  # up's state file for other shells: not the user's
        )
        with (tmp_path / "up.log").open("wb") as log:
            up = subprocess.Popen(
                [sys.executable, "-m", "gateway", "up", "--port", str(port)],
                env=env,
                cwd=tmp_path,  # its Celery worker writes kombu's control/ folder in the cwd
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        database = Database(f"sqlite:///{tmp_path / 'data' / 'trunkline.db'}")
        try:
            wait_until(smsc.bound_sessions, 60, what="up's SMPP process to bind")
            created = subprocess.run(
                [sys.executable, "-m", "gateway", "resources", "create", "app", "--json"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            resource = json.loads(created.stdout)
            give_number(database, resource["id"], "+14255550100")
            ca = tmp_path / "data" / "tls" / "ca.pem"
            wait_until(ca.exists, 30, what="the CA")
            # up starts its roles side by side: the SMPP bind can come before the API listens
            wait_until(lambda: tcp_listening(port), 60, what="up's API to listen")
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
            monkeypatch.setenv("SSL_CERT_FILE", str(ca))
            client = SmsClient.from_connection_string(resource["connectionString"], retry_total=3)
            [result] = client.send(from_="+14255550100", to=["+14255550123"], message="hello from up")
            assert result.successful

            def state() -> str:
                with database.session() as session:
                    message = session.get(SmsMessage, result.message_id)
                    return message.state if message else ""

            wait_until(lambda: state() == "delivered", 30, what="delivered")
            [pdu] = smsc.pdus("submit_sm")
            assert bytes.fromhex(pdu["short_message_hex"]) == b"hello from up"
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait(10)
            database.dispose()
