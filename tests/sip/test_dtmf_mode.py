"""The trunk's DTMF mode against the far end's SDP: which listening calls are tapped in-band."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sip.dtmf_mode import DtmfMode, taps_inband


def test_the_modes_as_asterisk_has_them() -> None:
    assert taps_inband(DtmfMode.AUTO, remote_telephone_event=False)
    assert not taps_inband(DtmfMode.AUTO, remote_telephone_event=True)
    assert taps_inband(DtmfMode.INBAND, remote_telephone_event=True)
    assert not taps_inband(DtmfMode.RFC2833, remote_telephone_event=False)
    assert not taps_inband(DtmfMode.INFO, remote_telephone_event=False)


@given(st.sampled_from(DtmfMode), st.booleans())
def test_a_tap_only_where_in_band_can_be_the_only_way_or_is_forced(mode: DtmfMode, event: bool) -> None:
    tapped = taps_inband(mode, event)
    # Without telephone-event, only the operator's word that digits come out of band skips it.
    if not event:
        assert tapped == (mode not in (DtmfMode.RFC2833, DtmfMode.INFO))
    # With it, only a trunk forced to inband is tapped.
    else:
        assert tapped == (mode is DtmfMode.INBAND)
    assert DtmfMode(mode.value) is mode  # the wire and database value reads back
