"""The SMPP side of Trunkline.

The protocol modules here are pure and sans-IO (no sockets, no database, no FastAPI, no clock):
``gsm7`` and ``encoding`` (GSM 03.38 / UCS-2 and SMPP data_coding), ``udh`` and
``segmentation`` (splitting outbound text), ``reassembly`` (inbound concatenated messages),
``receipts`` (delivery receipts), ``status`` (SMPP command_status) and ``keywords`` (opt-out /
opt-in / help). The bind builds on them, and ``worker`` (``trunkline smpp``) on the bind.
"""
