"""The opened service: checked keys, folders, database and secrets, passed
explicitly to everything that handles a submission."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from intake.format.envelope import Recipient
from intake.format.teamkeys import load_key_folder
from intake.server import server_secrets
from intake.server.config import Config
from intake.server.db import Database
from intake.server.sanitize.zygote import Zygote
from intake.server.server_secrets import ServerSecrets
from intake.server.store import Store


@dataclass
class Intake:
    """Everything a submission needs, passed explicitly."""

    config: Config
    db: Database
    store: Store
    recipients: list[Recipient]
    secrets: ServerSecrets
    clock: Callable[[], float] = field(default=time.time)  # tests move it forward
    # The worker's warm sanitizer, given by the app factory; None: each cleaner
    # is started from scratch.
    sandbox: Zygote | None = None

    def close(self) -> None:
        """Lets go of the database's connections and stops the sandbox's zygote."""
        self.db.dispose()
        if self.sandbox is not None:
            self.sandbox.stop()


def prepare(config: Config) -> Intake:
    """Checks keys and folders and opens the database. Raises on what it cannot trust."""
    recipients = load_key_folder(config.keys_dir)
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(config.store_dir)
    store.init()
    db = Database(config.effective_database_url)
    db.migrate()
    return Intake(config, db, store, recipients,
                  server_secrets.load_or_create(config.secrets_file))
