"""Persistence: SQLAlchemy 2 schema, repositories returning domain objects, Alembic migrations.

Never imports ``calsync.providers``; no row or ORM object leaves this package.
"""

from calsync.store.core import Store

__all__ = ["Store"]
