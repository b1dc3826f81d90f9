"""``trunkline smpp``'s entry point: migrate, apply the carrier config file, run the process until
SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.core.startup import freeze_startup_objects
from gateway.sms.connections import apply_config_file
from sms.worker.process import SmppProcess

log = logging.getLogger("trunkline.smpp.process")


def run_smpp(settings: Settings) -> None:
    from gateway.core.migrate import upgrade

    database = Database(settings.effective_database_url)
    upgrade(database.engine)
    if settings.smpp_config_file is not None:
        with database.session() as session:
            connections, routes = apply_config_file(session, settings.smpp_config_file)
        log.info("applied %s: %d connections, %d new routes", settings.smpp_config_file, connections, routes)
    process = SmppProcess(settings, database)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        process.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("trunkline smpp starting")
    freeze_startup_objects()
    process.run()
    database.dispose()
