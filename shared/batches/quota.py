"""The per-tenant quota on stored input files, taken while an upload streams in.

An uploading file's `bytes` is its reservation. It grows ahead of the data received, each step
granted by one statement that locks the tenant's row in `tenant_file_usage` (kept equal to the
sum of the tenant's input files by a trigger), so two uploads of one tenant that each fit but
together do not cannot both take the last free bytes. Finishing the upload sets `bytes` to the
real size; deleting a failed one gives its reservation back.
"""

from __future__ import annotations

from uuid import UUID

from shared.db.files import reserve_input_bytes
from shared.db.types import Pool
from shared.errors import StorageQuotaExceeded

# Reserve this much ahead: one round trip per step received, and at most this much held
# beyond what has arrived (near the limit, only what has arrived is reserved).
RESERVE_STEP = 4 * 1024 * 1024


class QuotaReservation:
    """The bytes reserved for one uploading input file, grown as its content arrives."""

    def __init__(self, db: Pool, *, file_id: str, tenant_id: UUID, limit: int) -> None:
        self._db = db
        self._file_id = file_id
        self._tenant_id = tenant_id
        self._limit = limit
        self._near_limit = False
        self.reserved = 0

    async def cover(self, size: int) -> None:
        """Hold at least `size` bytes in all, or raise StorageQuotaExceeded when the tenant has no room."""
        if size <= self.reserved:
            return
        need = size - self.reserved
        if not self._near_limit:
            if await self._grow(max(need, RESERVE_STEP)):
                return
            self._near_limit = True  # less than a step is left: from now on take only what arrives
        if not await self._grow(need):
            raise StorageQuotaExceeded(
                f"This file would take your stored files over their limit of {self._limit} bytes "
                "for this organization.", param="file")

    async def _grow(self, n: int) -> bool:
        async with self._db.acquire() as conn:
            granted = await reserve_input_bytes(conn, self._file_id, self._tenant_id, n, limit=self._limit)
        if granted:
            self.reserved += n
        return granted
