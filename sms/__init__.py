"""The SMPP side of Trunkline.

The protocol modules here are pure and sans-IO (no sockets, no database, no FastAPI, no clock):
``gsm7`` and ``encoding`` (GSM 03.38 / UCS-2 and SMPP data_coding), ``udh`` and
``segmentation`` (splitting outbound text), ``reassembly`` (inbound concatenated messages),
``receipts`` (delivery receipts), ``status`` (SMPP command_status), ``keywords`` (opt-out /
opt-in / help), ``window`` (the submit window) and ``esme`` (what an ESME bind does with each
PDU, tick and submit). The bind's runtime (``bind``, ``bind_sender``, ``bind_session``: sockets
and threads) drives ``esme``; ``worker`` (``trunkline smpp``) runs the binds.
"""
