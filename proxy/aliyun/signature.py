"""Verify callers the way Aliyun's gateway does: V1 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256).

The order matters: the key, the clock and the signature are checked before the nonce is claimed, so a
forged request cannot burn a legitimate caller's nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote

from multidict import CIMultiDict, CIMultiDictProxy

from ..config import CallerKey
from .errors import Err
from .nonces import NonceStore
from .request import InboundRequest

V3_ALGORITHM = "ACS3-HMAC-SHA256"
V1_REQUIRED = {"AccessKeyId": Err.MISSING_ACCESS_KEY_ID, "Signature": Err.MISSING_SIGNATURE,
               "SignatureNonce": Err.MISSING_SIGNATURE_NONCE, "Timestamp": Err.MISSING_TIMESTAMP}
# What a V3 signature must cover (both the Python and the Node SDKs sign these): otherwise routing, clock
# and nonce could be changed under a valid signature.
V3_MUST_SIGN = frozenset({"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"})
# Aliyun's V3 rule ("all common headers except Authorization, when present, must be signed"): every
# x-acs-* header, Host and Content-Type that is sent must be named in SignedHeaders. The SDKs comply (Python
# signs every header it sets, Node signs host, content-type and x-acs-*); an unsigned one could be added or
# changed by anyone on the path (an STS token, the body's form/raw reading), so the proxy never acts on it.
V3_SIGN_IF_PRESENT = ("host", "content-type")
Headers = CIMultiDict[str] | CIMultiDictProxy[str]


UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what `quote(text, safe="-_.~")` leaves as it is


def pct(text: str) -> str:
    """RFC 3986 percent-encoding as both signature versions use it (space is %20, '~' stays). Most names
    and values need none: those skip urllib's per-character quoting (microseconds each)."""
    return text if UNRESERVED.fullmatch(text) else quote(text, safe="-_.~")


def v1_string_to_sign(method: str, params: dict[str, str]) -> str:
    pairs = sorted((pct(k), pct(v)) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{k}={v}" for k, v in pairs)
    # pct(canonical): it holds only unreserved characters, %XX escapes, '=' and '&', so quoting it again
    # changes exactly those three characters
    return f"{method}&%2F&{canonical.replace('%', '%25').replace('=', '%3D').replace('&', '%26')}"


def v1_sign(secret: str, string_to_sign: str) -> str:
    mac = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def v3_string_to_sign(method: str, path: str, query: list[tuple[str, str]], headers: Headers,
                      signed_headers: str, body_sha256: str) -> str:
    canonical_query = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(query))
    canonical_headers = "".join(
        f"{name}:{','.join(sorted(v.strip() for v in headers.getall(name, [])))}\n"
        for name in signed_headers.split(";")
    )
    canonical = "\n".join([method, path, canonical_query, canonical_headers, signed_headers, body_sha256])
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def v3_authorization(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                     body_sha256: str, key_id: str, secret: str) -> str:
    """Sign every given header, as the Python SDK does (used to re-sign requests forwarded to Aliyun)."""
    signed = ";".join(sorted(name.lower() for name in headers))
    sts = v3_string_to_sign(method, path, query, CIMultiDict(headers), signed, body_sha256)
    return f"{V3_ALGORITHM} Credential={key_id},SignedHeaders={signed},Signature={v3_sign(secret, sts)}"


def v3_sign(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time, and safe for any text a caller sends (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def _unsigned(headers: Headers, signed: set[str]) -> bool:
    """Whether a header the proxy may act on (x-acs-*, Host, Content-Type) was sent but not signed."""
    return any((name.startswith("x-acs-") or name in V3_SIGN_IF_PRESENT) and name not in signed
               for name in (key.lower() for key in headers))


def parse_timestamp(value: str) -> float:
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Err.TIMESTAMP_FORMAT() from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


class Authenticator:
    def __init__(self, keys: dict[str, CallerKey], window_seconds: int, nonces: NonceStore) -> None:
        self.keys = keys
        self.window = window_seconds
        self.nonces = nonces

    @property
    def open(self) -> bool:
        """No keys configured: any caller is accepted (allowed on loopback only, see config)."""
        return not self.keys

    async def authenticate(self, inbound: InboundRequest) -> str | None:
        """Return the caller's AccessKeyId, or raise the Aliyun error the gateway would."""
        if self.open:
            return None
        kind = inbound.signature_kind
        if kind == "v3":
            return await self._v3(inbound)
        if kind == "v1":
            return await self._v1(inbound)
        raise Err.MISSING_ACCESS_KEY_ID()

    async def _v1(self, inbound: InboundRequest) -> str:
        params = inbound.params
        for name, row in V1_REQUIRED.items():
            if not params.get(name):
                raise row()
        if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
            raise Err.INCOMPLETE_SIGNATURE()
        key_id = params["AccessKeyId"]
        key = self._key(key_id)
        stamp = self._check_clock(params["Timestamp"])
        sts = v1_string_to_sign(inbound.method, params)
        if not _same(v1_sign(key.secret.get_secret_value(), sts), params["Signature"]):
            raise Err.SIGNATURE_MISMATCH(sts)
        self._check_token(key, params.get("SecurityToken"))
        await self._claim(key_id, params["SignatureNonce"], stamp)
        return key_id

    async def _v3(self, inbound: InboundRequest) -> str:
        algorithm, _, rest = inbound.headers["Authorization"].partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        if algorithm != V3_ALGORITHM or not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
            raise Err.INCOMPLETE_SIGNATURE()
        headers = inbound.headers
        for name in ("x-acs-date", "x-acs-signature-nonce"):
            if not headers.get(name):
                raise Err.INCOMPLETE_SIGNATURE()
        signed_headers = fields["SignedHeaders"].lower()
        signed = set(signed_headers.split(";"))
        if not V3_MUST_SIGN.issubset(signed) or _unsigned(headers, signed):
            raise Err.INCOMPLETE_SIGNATURE()
        key_id = fields["Credential"]
        key = self._key(key_id)
        stamp = self._check_clock(headers["x-acs-date"])
        # The actual body hash, not the header: a body that does not match its declared hash fails here.
        sts = v3_string_to_sign(inbound.method, inbound.path, inbound.query, headers, signed_headers,
                                inbound.body_sha256)
        if not _same(v3_sign(key.secret.get_secret_value(), sts), fields["Signature"]):
            raise Err.SIGNATURE_MISMATCH(sts)
        self._check_token(key, headers.get("x-acs-security-token"))
        await self._claim(key_id, headers["x-acs-signature-nonce"], stamp)
        return key_id

    def _key(self, key_id: str) -> CallerKey:
        key = self.keys.get(key_id)
        if key is None:
            raise Err.ACCESS_KEY_NOT_FOUND()
        return key

    def _check_clock(self, value: str) -> float:
        stamp = parse_timestamp(value)
        if abs(time.time() - stamp) > self.window:
            raise Err.TIMESTAMP_EXPIRED()
        return stamp

    @staticmethod
    def _check_token(key: CallerKey, token: str | None) -> None:
        expected = key.security_token
        if expected is not None and not _same(expected.get_secret_value(), token or ""):
            raise Err.SECURITY_TOKEN_INVALID()

    async def _claim(self, key_id: str, nonce: str, stamp: float) -> None:
        # Remember the nonce until its timestamp leaves the window: after that the clock check refuses it.
        until = max(time.time(), stamp) + self.window
        if not await self.nonces.claim(f"{key_id}\n{nonce}", until):
            raise Err.NONCE_USED()
