"""A trunk's DTMF mode and the one decision it drives: whether a call that listens for digits
gets its audio tapped for in-band tones. Pure: no pjsua2, no worker, no gateway.

In-band detection is the only DTMF path with a cost per frame: a bridge port whose callback is
a SWIG director call into Python every 20 ms, and the numpy detector every 40 ms. RFC 2833
(telephone-event) and SIP INFO digits cost nothing while nobody presses a key, so they are
always reported, whatever the mode. The modes follow Asterisk's ``dtmfmode``:

- ``auto`` (the default): tap only when the far end did not negotiate telephone-event in its
  SDP, that is when it cannot send RFC 2833 and its digits can only be tones in the audio;
- ``inband``: always tap while listening (a carrier that negotiates telephone-event yet sends
  tones in the audio);
- ``rfc2833`` and ``info``: never tap (the operator knows the carrier sends digits out of band).
"""

from __future__ import annotations

import enum


class DtmfMode(enum.StrEnum):
    """How a trunk's carrier sends DTMF (the trunk setting ``dtmf``)."""

    AUTO = "auto"
    RFC2833 = "rfc2833"
    INFO = "info"
    INBAND = "inband"


def taps_inband(mode: DtmfMode, remote_telephone_event: bool) -> bool:
    """Whether a listening call's audio goes through the in-band detector.

    ``remote_telephone_event``: the far end's SDP negotiated telephone-event (it can send
    RFC 2833 events).
    """
    if mode is DtmfMode.INBAND:
        return True
    if mode is DtmfMode.AUTO:
        return not remote_telephone_event
    return False
