"""Several parties, heard: with the worker's Bridge and Mute (branch media-worker), a participant
added with the official client hears the call's callee and is heard by it, and muting it cuts
what it says. Each far end is SIPp for the signalling with its audio at an ``RtpPeer`` of the
test, which sends a tone of its own and records what the gateway sends; the proof is the other
party's tone found in the recording."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.communication.callautomation import PhoneNumberIdentifier

from tests.e2e.calls.conftest import CALLER, VoiceStack
from tests.e2e.calls.test_outbound_calls import Carrier, callback, create_call
from tests.sip.audio import tone
from tests.sip.support import SCENARIOS, RtpPeer, Sipp
from tests.sip.worker.test_media import A_TONE, B_TONE, tone_share

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]


class RtpCarrier(Carrier):
    """A route whose one callee sends its audio to an RtpPeer."""

    def callee_with_audio(self, peer: RtpPeer) -> Sipp:
        name = f"rtp-callee-{self.prefix.lstrip('+')}"
        directory = self.tmp_path / name
        directory.mkdir()
        sipp = Sipp(directory, SCENARIOS / "callee_rtp.xml", "-key", "rtp_sink", str(peer.port))
        self.callees.append(sipp)
        self._cli("sip", "trunk", "add", name, "--carrier", "voice-test-carrier", "--host", "127.0.0.1",
                  "--port", str(sipp.port), "--allow", "127.0.0.2/32")  # fmt: skip
        self.trunks.append(name)
        self.route()
        return sipp


@pytest.fixture
def peers() -> Iterator[list[RtpPeer]]:
    made: list[RtpPeer] = []
    yield made
    for peer in made:
        peer.close()


def test_an_added_participant_hears_and_is_heard_until_muted(
    stack: VoiceStack, tmp_path: Path, peers: list[RtpPeer], request: pytest.FixtureRequest
) -> None:
    base = abs(hash(request.node.name)) % 1000
    carriers = [RtpCarrier(stack, tmp_path, f"+1557{base:03d}{index}") for index in range(2)]
    peers.extend([callee_peer := RtpPeer(tone(A_TONE, 1.0)), added_peer := RtpPeer(tone(B_TONE, 1.0))])
    try:
        callee = carriers[0].callee_with_audio(callee_peer)
        added_sipp = carriers[1].callee_with_audio(added_peer)
        target, added = carriers[0].prefix + "01", carriers[1].prefix + "01"
        call_id = create_call(stack, target, "media").call_connection_id
        callback(stack, call_id, "CallConnected")
        assert stack.app.client is not None
        connection = stack.app.client.get_call_connection(call_id)
        connection.add_participant(
            PhoneNumberIdentifier(added), source_caller_id_number=PhoneNumberIdentifier(CALLER)
        )
        callback(stack, call_id, "AddParticipantSucceeded")
        assert tone_share(added_peer, A_TONE, settle=0.6) > 0.8  # the added party hears the callee
        assert tone_share(callee_peer, B_TONE) > 0.8  # and the callee hears it

        connection.mute_participant(PhoneNumberIdentifier(added))
        assert tone_share(callee_peer, B_TONE) == 0.0  # muted: no longer heard
        assert tone_share(added_peer, A_TONE) > 0.8  # but it still hears

        connection.remove_participant(PhoneNumberIdentifier(added))
        callback(stack, call_id, "RemoveParticipantSucceeded")
        assert added_sipp.wait() == 0, added_sipp.errors()
        connection.hang_up(is_for_everyone=True)
        callback(stack, call_id, "CallDisconnected")
        assert callee.wait() == 0, callee.errors()
        assert not stack.app.errors, stack.app.errors
    finally:
        for carrier in carriers:
            carrier.close()
