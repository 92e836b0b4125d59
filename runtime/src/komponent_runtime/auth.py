"""API keys for admin endpoints: one key per calling system, stored only as a SHA-256 hash, with scopes.

Configured by `API_KEYS` (environment or a Kubernetes Secret): comma-separated entries
`<system>:<sha256 hex of the key>:<scope>|<scope>…`, e.g. `backoffice:9f86…:catalogue:admin|registration:read`.
A scope `*` grants everything. Callers send `Authorization: Bearer <key>`. Keys are long random tokens, so
a fast hash is enough (no password stretching needed); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# The local stack's key (./dev up prints it). Never valid unless configured: see API_KEYS in deploy/local/env.sh.
LOCAL_DEV_KEY = "local-dev-admin-key"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    system: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes


def parse_api_keys(spec: str) -> dict[str, Caller]:
    """`system:hash:scope|scope,...` → {hash: Caller}."""
    callers: dict[str, Caller] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        system, digest, scopes = entry.split(":", 2)
        if len(digest) != 64:
            raise ValueError(f"API_KEYS entry for {system!r}: the key must be given as a SHA-256 hex digest")
        callers[digest.lower()] = Caller(system, frozenset(scopes.split("|")))
    return callers


_bearer = HTTPBearer(auto_error=False)


def require_scope(scope: str) -> Callable[..., Caller]:
    """A FastAPI dependency: the caller must present a configured key carrying `scope`."""

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:  # noqa: B008
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"}
            )
        presented = hash_key(credentials.credentials)
        for digest, caller in parse_api_keys(os.environ.get("API_KEYS", "")).items():
            if hmac.compare_digest(digest, presented):
                if not caller.may(scope):
                    raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks the scope {scope}")
                return caller
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": "Bearer"}
        )

    return check
