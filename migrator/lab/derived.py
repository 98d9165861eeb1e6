"""Identifiers and bytes the lab derives from stable facts (never random: the same fleet prints the same ids).

Shared by the native commands and the device cmdlets (dsregcmd's device certificate thumbprint is the one
Cert:\\LocalMachine\\My lists), so it depends on neither.
"""

from __future__ import annotations

import hashlib
import uuid

# Namespace for the lab's derived identifiers (device key container ids, ...): stable across runs.
_LAB_NAMESPACE = uuid.UUID("6f1d8f8e-2f53-4c1e-9a55-3c1b7a0e5d21")


def derived_guid(*parts: str) -> str:
    """A GUID derived from stable lab facts (never random: the same fleet prints the same ids)."""
    return str(uuid.uuid5(_LAB_NAMESPACE, "|".join(parts)))


def derived_thumbprint(*parts: str) -> str:
    """A 40-hex-digit certificate thumbprint (SHA-1 sized) derived from stable lab facts."""
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest().upper()


def derived_bytes(size: int, *parts: str) -> bytes:
    """Deterministic filler bytes (e.g. an encoded ticket's dump): SHAKE-256 of stable lab facts."""
    return hashlib.shake_256("|".join(parts).encode()).digest(size)
