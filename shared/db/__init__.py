"""The only package that talks to Postgres (asyncpg). SQL lives in `sql/*.sql` as named queries.

Functions here take a pool or a connection, so the caller owns the transaction.
"""

import asyncpg as _asyncpg

# Failures of the database connection itself (restart, failover, network): worth retrying
# the whole job later. Errors in the SQL or the data are not in this list.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    _asyncpg.PostgresConnectionError,
    _asyncpg.InterfaceError,
    _asyncpg.CannotConnectNowError,
    _asyncpg.TooManyConnectionsError,
    _asyncpg.AdminShutdownError,
    _asyncpg.CrashShutdownError,
    # A pooled connection the server already closed, before the client noticed
    # (MagicStack/asyncpg#1069): "cannot switch to state ...; another operation is in progress".
    _asyncpg.InternalClientError,
    ConnectionError,
    OSError,
)
