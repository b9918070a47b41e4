"""Events out: outbox deliveries to the ``[[webhooks]]`` endpoints, signed per Standard Webhooks.

``Dispatcher`` runs in the daemon (started and stopped by the CLI's
lifespan hooks) and backs ``calsync webhooks test``; ``load_secrets`` reads
an endpoint's ``secret_file``. Events themselves are written by the store,
in the transaction of the change they describe.
"""

from calsync.events.dispatcher import Dispatcher
from calsync.events.signing import TestResult, load_secrets, webhook_id

__all__ = ["Dispatcher", "TestResult", "load_secrets", "webhook_id"]
