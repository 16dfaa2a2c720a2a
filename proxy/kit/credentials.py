"""AWS credentials for signing: botocore's default chain (env, profile, IRSA web identity, container and
instance metadata), with every blocking step (first resolution, refresh) kept off the event loop.
"""

from __future__ import annotations

import asyncio

import botocore.session
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials

from ..aliyun.errors import Err


class CredentialSource:
    def __init__(self, static: Credentials | None = None) -> None:
        self._credentials: Credentials | None = static
        self.refresh_failures = 0

    async def start(self) -> None:
        if self._credentials is None:
            self._credentials = await asyncio.to_thread(botocore.session.Session().get_credentials)

    @property
    def available(self) -> bool:
        return self._credentials is not None

    async def frozen(self) -> ReadOnlyCredentials:
        """One consistent (key, secret, token) generation per signature, as botocore's own signer does."""
        creds = self._credentials
        if creds is None:
            raise Err.SERVICE_UNAVAILABLE()
        try:
            if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
                return await asyncio.to_thread(creds.get_frozen_credentials)
            return creds.get_frozen_credentials()
        except Exception:  # botocore raises many kinds here; all mean "cannot sign now"
            self.refresh_failures += 1
            raise Err.SERVICE_UNAVAILABLE() from None
