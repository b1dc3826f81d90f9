"""``Transfer``: a REFER to the call's far end, and its NOTIFYs as ``TransferProgress`` events.

pjsua2 sends the REFER (``Call.xfer``) and reports the referred call's progress from the far
end's NOTIFYs (``message/sipfrag``) in ``onCallTransferStatus``. A REFER the far end refuses
(405, 501, 603, ...) or never answers comes through the same callback as a final status.
What to do with the transferring call afterwards (hang it up, fall back to a new leg) is the
control plane's decision.
"""

from __future__ import annotations

import pjsua2 as pj

from sip.worker.messages import TransferProgress


def refer(call: pj.Call, target: str) -> None:
    """Send REFER with ``Refer-To: <target>``; raises ``pj.Error`` if pjsua cannot."""
    call.xfer(target, pj.CallOpParam(True))


def progress(call_id: str, prm: pj.OnCallTransferStatusParam) -> TransferProgress:
    """The event for one transfer status: a NOTIFY's sipfrag status, or the REFER's refusal."""
    return TransferProgress(call_id, prm.statusCode, bool(prm.finalNotify), prm.reason)
