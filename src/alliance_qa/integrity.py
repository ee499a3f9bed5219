"""Checksums: of files read in blocks, and of JSON records that carry their own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SEAL = "checksum"


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks (model weights and large indexes included)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest(record: dict) -> str:
    body = {key: value for key, value in record.items() if key != SEAL}
    return sha256_bytes(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())


def sealed(record: dict) -> dict:
    """The record with a checksum of its own content (under "checksum")."""
    return {**record, SEAL: _digest(record)}


def is_sealed(record: object) -> bool:
    """Whether a record read back is exactly as it was sealed."""
    return isinstance(record, dict) and record.get(SEAL) == _digest(record)
