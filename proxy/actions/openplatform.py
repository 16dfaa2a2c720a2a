"""openplatform 2019-12-19 AuthorizeFileUpload: the first step of every SDK `*Advance` method.

Aliyun answers with a temporary OSS PostObject policy for its Shanghai staging bucket; the proxy answers
with one for its own upload endpoint (`upload_host`, proxy/uploads), per caller, expiring, size-capped and
fixed to one object key. Every value is a string except `UseAccelerate`, a real boolean, as in Aliyun's
answer (the SDKs call `assert_as_boolean` on it).
"""

from __future__ import annotations

from typing import Any

from .call import Call


def _caller(call: Call) -> str:
    """The signed AccessKeyId (the signature was checked before any converter runs)."""
    inbound = call.inbound
    if inbound.signature_kind == "v3":
        credential = inbound.headers.get("Authorization", "").partition("Credential=")[2]
        return credential.split(",", 1)[0].strip()
    return inbound.params.get("AccessKeyId", "")


async def authorize_file_upload(call: Call) -> dict[str, Any]:
    authority = call.backends.uploads
    if authority is None:
        raise RuntimeError("AuthorizeFileUpload needs the upload authority (proxy/uploads)")
    grant = authority.grant(_caller(call))
    return {
        "Bucket": authority.bucket,
        "Endpoint": authority.host,
        "ObjectKey": grant.object_key,
        "AccessKeyId": grant.access_key_id,
        "EncodedPolicy": grant.encoded_policy,
        "Signature": grant.signature,
        "UseAccelerate": False,
    }
