"""The receipt object. Its shape is `Receipt.public()` in `shared.receipts.types`, beside the
signing code, because the signature covers exactly that shape; routes take it from here."""

from __future__ import annotations

from typing import Any

from shared.receipts.types import Receipt


def receipt_object(r: Receipt) -> dict[str, Any]:
    return r.public()
