"""AWS credentials for signing: botocore's default chain (env, profile, IRSA web identity, container and
instance metadata), with every blocking step (resolution, refresh) kept off the event loop.

A chain that finds nothing, or fails, does not stop the proxy: calls answer `ServiceUnavailable` and the
chain is tried again (at most every RETRY_SECONDS), so a late-mounted IRSA token heals without a restart.
"""

from __future__ import annotations

import asyncio
import time

import botocore.session
import structlog
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials

from ..aliyun.errors import Err
from ..observability import metrics

log = structlog.get_logger("kit.credentials")
RETRY_SECONDS = 10.0


class CredentialSource:
    def __init__(self, static: Credentials | None = None) -> None:
        self._credentials: Credentials | None = static
        self._static = static is not None
        self._next_try = 0.0
        self.failures = 0

    async def start(self) -> None:
        await self._resolve()

    @property
    def available(self) -> bool:
        return self._credentials is not None

    async def _resolve(self) -> None:
        if self._static or self._credentials is not None or time.monotonic() < self._next_try:
            return
        self._next_try = time.monotonic() + RETRY_SECONDS
        try:
            self._credentials = await asyncio.to_thread(botocore.session.Session().get_credentials)
        except Exception as exc:  # botocore raises many kinds for a broken chain; all mean "none yet"
            self.failures += 1
            metrics.CREDENTIAL_FAILURES.inc()
            log.error("kit.credentials_failed", error=type(exc).__name__, message=str(exc))
            return
        if self._credentials is None:
            log.error("kit.no_credentials", hint="botocore's default chain found no AWS credentials")

    async def frozen(self) -> ReadOnlyCredentials:
        """One consistent (key, secret, token) generation per signature, as botocore's own signer does."""
        await self._resolve()
        creds = self._credentials
        if creds is None:
            raise Err.SERVICE_UNAVAILABLE()
        try:
            if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
                return await asyncio.to_thread(creds.get_frozen_credentials)
            return creds.get_frozen_credentials()
        except Exception as exc:
            self.failures += 1
            metrics.CREDENTIAL_FAILURES.inc()
            log.error("kit.credentials_refresh_failed", error=type(exc).__name__)
            raise Err.SERVICE_UNAVAILABLE() from None
