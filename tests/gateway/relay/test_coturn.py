"""Relay credentials issued by Trunkline work on a real coturn, and only while they are genuine
and unexpired.

A real coturn (``--use-auth-secret``) and a real ``trunkline api`` share the static auth secret;
the credentials come from the official networktraversal SDK and are used by coturn's own test
client, ``turnutils_uclient``, to allocate relays (client-to-client over loopback).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.networktraversal import CommunicationRelayClient, RouteType

from tests.e2e.helpers import (
    Coturn,
    ProcessError,
    TrunklineServer,
    log_tail,
    running_coturn,
    running_trunkline,
)

pytestmark = pytest.mark.coturn

UCLIENT_TIMEOUT = 20.0
EXPIRY_WAIT_LIMIT = 10.0
EXPIRING_TTL = 3  # seconds: long enough to allocate once, short enough to wait out


@dataclass
class Setup:
    coturn: Coturn
    server: TrunklineServer
    relay: CommunicationRelayClient
    identity: CommunicationIdentityClient


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    missing = [tool for tool in ("turnserver", "turnutils_uclient") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"coturn is not installed ({', '.join(missing)} missing); deselect with -m 'not coturn'")
    with ExitStack() as stack:
        try:
            coturn = stack.enter_context(running_coturn(tmp_path_factory.mktemp("coturn")))
            server = stack.enter_context(
                running_trunkline(
                    tmp_path_factory.mktemp("trunkline"), turn_urls=coturn.urls, turn_secret=coturn.secret
                )
            )
        except ProcessError as exc:
            pytest.fail(str(exc), pytrace=False)
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
        patch.setenv("SSL_CERT_FILE", str(server.ca_file))
        connection = server.create_resource()["connectionString"]
        yield Setup(
            coturn,
            server,
            CommunicationRelayClient.from_connection_string(connection),
            CommunicationIdentityClient.from_connection_string(connection),
        )


def udp_turn_address(ice_server: Any) -> tuple[str, int]:
    """host and port of the ``turn:host:port?transport=udp`` URL the API handed out."""
    url = next(u for u in ice_server.urls if u.startswith("turn:") and u.endswith("?transport=udp"))
    host, _, port = url.removeprefix("turn:").split("?", 1)[0].rpartition(":")
    return host, int(port)


def allocate(
    setup: Setup, ice_server: Any, username: str, credential: str
) -> subprocess.CompletedProcess[str]:
    """Run turnutils_uclient: two clients allocate relays and exchange one message through them."""
    host, port = udp_turn_address(ice_server)
    command = [
        "turnutils_uclient",
        "-v",  # print the allocation steps
        "-y",  # client-to-client: both ends are relayed by this server
        "-c",  # no RTCP allocation
        "-n", "1",
        "-m", "1",
        "-l", "64",
        "-p", str(port),
        "-u", username,
        "-w", credential,
        host,
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=UCLIENT_TIMEOUT)
    print(f"$ {' '.join(command)}\nexit {result.returncode}\n{result.stdout}{result.stderr}")
    print(f"--- turnserver log ---\n{log_tail(setup.coturn.log_file, 30)}")
    return result


def assert_allocated(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("Received relay addr: 127.0.0.1:") >= 2, output
    assert "tot_recv_msgs=2" in output.replace(" ", ""), output  # the messages crossed the relays
    assert "Cannot complete Allocation" not in output


def assert_refused(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Cannot complete Allocation" in output, output
    assert "Received relay addr" not in output


def test_issued_credentials_allocate(setup: Setup) -> None:
    config = setup.relay.get_relay_configuration(route_type=RouteType.ANY, ttl=600)
    (ice_server,) = config.ice_servers

    assert_allocated(allocate(setup, ice_server, ice_server.username, ice_server.credential))


def test_credentials_for_an_identity_allocate(setup: Setup) -> None:
    user = setup.identity.create_user()
    config = setup.relay.get_relay_configuration(user=user)

    for ice_server in config.ice_servers:  # "any" and "nearest" routes
        assert ice_server.username.endswith(user.raw_id.replace(":", "-"))
    ice_server = config.ice_servers[1]
    assert_allocated(allocate(setup, ice_server, ice_server.username, ice_server.credential))


def test_tampered_credential_is_refused(setup: Setup) -> None:
    (ice_server,) = setup.relay.get_relay_configuration(route_type=RouteType.ANY, ttl=600).ice_servers
    credential = ice_server.credential
    tampered = ("B" if credential[0] == "A" else "A") + credential[1:]

    assert_refused(allocate(setup, ice_server, ice_server.username, tampered))


def test_tampered_username_is_refused(setup: Setup) -> None:
    """Pushing the expiry out (or changing the user) breaks the credential."""
    (ice_server,) = setup.relay.get_relay_configuration(route_type=RouteType.ANY, ttl=600).ice_servers
    expiry, _, user = ice_server.username.partition(":")

    assert_refused(allocate(setup, ice_server, f"{int(expiry) + 86400}:{user}", ice_server.credential))
    assert_refused(allocate(setup, ice_server, f"{expiry}:{user}x", ice_server.credential))


def test_credential_stops_working_when_it_expires(setup: Setup) -> None:
    config = setup.relay.get_relay_configuration(route_type=RouteType.ANY, ttl=EXPIRING_TTL)
    (ice_server,) = config.ice_servers
    assert (config.expires_on - datetime.now(UTC)).total_seconds() <= EXPIRING_TTL

    # Valid now (the allocations happen in the first milliseconds of the ~3 s run)...
    assert_allocated(allocate(setup, ice_server, ice_server.username, ice_server.credential))

    # ...refused once the expiry in the username is past. Wait for that, with a bound.
    deadline = time.monotonic() + EXPIRY_WAIT_LIMIT
    while time.time() <= config.expires_on.timestamp() + 1:
        assert time.monotonic() < deadline, "the credential did not expire in time"
        time.sleep(0.2)
    assert_refused(allocate(setup, ice_server, ice_server.username, ice_server.credential))
