"""OSS PostObject policies: issued per caller by AuthorizeFileUpload, checked by the upload endpoint.

OSS's V1 form signature is base64(HMAC-SHA1(secret, base64-policy)) (OSS docs, "PostObject"). The
AccessKeyId handed out is derived from the caller's own AccessKeyId and the proxy's signing key, and its
secret is derived from that id, so any replica sharing the key can check any replica's policy and nobody
without the key can mint one. The policy fixes the object key (`["eq", "$key", ...]`), the bucket, the size
range (the largest image any action accepts) and an expiry; the object key carries the object's own expiry,
so the store can find it (S3 keys are filed by expiry) and refuse it once expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..aliyun.errors import OssErr

ID_PREFIX = "STS.VP"  # Aliyun hands out STS ids ("STS." prefix) for temporary OSS access
KEY_PREFIX = "upload"
_OBJECT_KEY = re.compile(rf"{KEY_PREFIX}/(\d{{10}})/[0-9a-f]{{32}}")


@dataclass(frozen=True)
class Grant:
    """What AuthorizeFileUpload answers (all strings but UseAccelerate, as Aliyun's answer)."""

    access_key_id: str
    encoded_policy: str
    signature: str
    object_key: str


class PolicyRefused(Exception):
    """The form is refused, as OSS refuses it: a row of the OSS error table and what fills its message."""

    def __init__(self, err: OssErr, *args: object) -> None:
        super().__init__(err.message(*args))
        self.err, self.args_ = err, args


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def object_expiry(object_key: str) -> int | None:
    """The expiry epoch an upload's key carries, or None when the key is not an upload key."""
    found = _OBJECT_KEY.fullmatch(object_key)
    return int(found.group(1)) if found else None


class UploadAuthority:
    def __init__(self, signing_key: bytes, bucket: str, host: str, ttl_seconds: int, max_bytes: int) -> None:
        self._key = signing_key
        self.bucket = bucket
        self.host = host  # host[:port], as Endpoint names it
        self.ttl = ttl_seconds
        self.max_bytes = max_bytes

    @property
    def host_name(self) -> str:
        return self.host.partition(":")[0]

    def _secret(self, access_key_id: str) -> bytes:
        return hmac.new(self._key, f"upload-secret\n{access_key_id}".encode(), hashlib.sha256).digest()

    def grant(self, caller: str, now: float | None = None) -> Grant:
        """A policy for one object: valid `ttl` seconds; the object lives `ttl` seconds more after that."""
        now = time.time() if now is None else now
        tag = hmac.new(self._key, f"upload-caller\n{caller}".encode(), hashlib.sha256).digest()
        access_key_id = ID_PREFIX + base64.b32encode(tag[:15]).decode()
        expires = int(now) + self.ttl
        object_key = f"{KEY_PREFIX}/{expires + self.ttl:010d}/{secrets.token_hex(16)}"
        policy = {"expiration": iso(expires), "conditions": [
            {"bucket": self.bucket},
            ["eq", "$key", object_key],
            ["content-length-range", 0, self.max_bytes],
        ]}
        encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
        return Grant(access_key_id, encoded, self.sign(access_key_id, encoded), object_key)

    def sign(self, access_key_id: str, encoded_policy: str) -> str:
        mac = hmac.new(self._secret(access_key_id), encoded_policy.encode(), hashlib.sha1).digest()
        return base64.b64encode(mac).decode()

    def check(self, fields: dict[str, str], bucket: str, now: float | None = None) -> dict[str, Any]:
        """The form's fields (names lower-cased, all but the file) checked as OSS checks them; returns the
        policy. The file's size is checked against `content-length-range` while it streams (`size_range`)."""
        now = time.time() if now is None else now
        access_key_id, encoded, signature = (fields.get(n, "") for n in ("ossaccesskeyid", "policy", "signature"))
        if not (access_key_id and encoded and signature):
            raise PolicyRefused(OssErr.ANONYMOUS)
        if not access_key_id.startswith(ID_PREFIX):
            raise PolicyRefused(OssErr.UNKNOWN_KEY_ID)
        if not hmac.compare_digest(self.sign(access_key_id, encoded).encode(), signature.encode()):
            raise PolicyRefused(OssErr.SIGNATURE_MISMATCH)
        try:
            policy = json.loads(base64.b64decode(encoded, validate=True))
            expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            conditions = policy["conditions"]
            if not isinstance(conditions, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise PolicyRefused(OssErr.POLICY_INVALID, "Invalid JSON.") from None
        if expiration.timestamp() < now:
            raise PolicyRefused(OssErr.POLICY_EXPIRED)
        values = {**fields, "bucket": bucket}
        for condition in conditions:
            if not _holds(condition, values):
                raise PolicyRefused(OssErr.POLICY_CONDITION, json.dumps(condition, separators=(",", ":")))
        return dict(policy)


def size_range(policy: dict[str, Any], cap: int) -> tuple[int, int]:
    """The policy's content-length-range, never above `cap`."""
    low, high = 0, cap
    for condition in policy["conditions"]:
        if isinstance(condition, list) and len(condition) == 3 and condition[0] == "content-length-range":
            low, high = max(low, int(condition[1])), min(high, int(condition[2]))
    return low, high


def _holds(condition: Any, values: dict[str, str]) -> bool:
    if isinstance(condition, dict):
        return all(values.get(str(k).lower(), "") == str(v) for k, v in condition.items())
    if not (isinstance(condition, list) and len(condition) == 3):
        raise PolicyRefused(OssErr.POLICY_INVALID, "Invalid Simple-Condition.")
    op, name, value = (str(x) for x in condition)
    op = op.lower()
    if op == "content-length-range":
        return True  # checked on the file itself
    actual = values.get(name.removeprefix("$").lower(), "")
    if op == "eq":
        return actual == value
    if op == "starts-with":
        return actual.startswith(value)
    raise PolicyRefused(OssErr.POLICY_INVALID, f"Unknown operation {op}.")
