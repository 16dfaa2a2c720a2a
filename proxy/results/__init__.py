"""Where result images and async-job records live: the local data directory, or an S3 bucket.

`open_store(settings)` builds the configured store; the app keeps it on `Services.results`.
"""

from __future__ import annotations

import secrets

import structlog

from ..config import Settings
from .base import ResultStore, ResultStoreError, check_key, valid_key
from .local import LocalResultStore
from .s3 import S3ResultStore

__all__ = ["LocalResultStore", "ResultStore", "ResultStoreError", "S3ResultStore", "check_key", "open_store",
           "valid_key"]

log = structlog.get_logger("results")


async def open_store(settings: Settings) -> ResultStore:
    """The configured store, started (directories made, S3 client built); raises ResultStoreError if it can't."""
    if settings.result_store == "s3":
        assert settings.s3_bucket  # the config validator guarantees it
        s3 = S3ResultStore(settings.s3_bucket, settings.s3_prefix, settings.result_ttl_seconds,
                           settings.s3_region or settings.aws_region, settings.s3_endpoint_url,
                           settings.s3_addressing_style)
        await s3.start()
        log.info("results.store", kind="s3", bucket=s3.bucket, prefix=s3.prefix, region=s3.region,
                 endpoint=s3.endpoint_url)
        return s3
    if settings.result_signing_key is not None:
        key = settings.result_signing_key.get_secret_value().encode()
    else:
        key = secrets.token_bytes(32)
        log.warning("results.ephemeral_signing_key",
                    warning="no result_signing_key configured: result URLs are signed with a random key of "
                            "this process; they stop working on restart, and several replicas sharing "
                            "data_dir need one shared key (set VISION_PROXY_RESULT_SIGNING_KEY)")
    local = LocalResultStore(settings.data_dir, settings.result_ttl_seconds, key, settings.public_base_url)
    await local.start()
    log.info("results.store", kind="local", data_dir=str(local.root), public_base_url=local.public_base_url)
    return local
