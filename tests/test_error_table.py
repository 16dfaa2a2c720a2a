"""The error table (proxy/aliyun/errors.py `Err`) is the one place for codes, statuses, messages and the
facts read from them; every error is built complete from a row."""

from __future__ import annotations

import inspect
from collections import defaultdict
from typing import get_args

from proxy.aliyun.errors import Err, ImageKind, OssErr, invalid, missing


def test_every_row_has_an_error_status_and_a_message() -> None:
    for row in [*Err, *OssErr]:
        assert row.code and row.template.strip(), row
        assert 400 <= row.status <= 599, row


def test_a_code_is_sent_with_one_status_only() -> None:
    """Within each product's table (OSS's SignatureDoesNotMatch is a 403, the RPC gateway's a 400)."""
    for table in (Err, OssErr):
        statuses: dict[str, set[int]] = defaultdict(set)
        for row in table:
            statuses[row.code].add(row.status)
        assert {code: s for code, s in statuses.items() if len(s) > 1} == {}


def test_no_row_is_an_alias() -> None:
    """Two rows with the same code, status, message and facts would silently become one enum member."""
    assert list(Err.__members__.values()) == list(Err)
    assert list(OssErr.__members__.values()) == list(OssErr)


def test_each_image_failure_kind_is_one_row() -> None:
    kinds = [row.image_kind for row in Err if row.image_kind]
    assert sorted(kinds) == sorted(get_args(ImageKind))
    assert all(row.code.startswith("InvalidImage.") for row in Err if row.image_kind)


def test_signature_failures_are_marked_in_the_table() -> None:
    assert Err.SIGNATURE_MISMATCH.signature and Err.MISSING_SIGNATURE_NONCE.signature
    assert not Err.MISSING.signature and not Err.INVALID_PARAMETER.signature and not Err.IMAGE_URL.signature


def test_templated_codes_and_messages() -> None:
    err = missing("ImageURL")
    assert (err.code, err.status, err.message, err.kind) == (
        "MissingImageURL", 400, "ImageURL is mandatory for this action.", Err.MISSING)
    err = invalid("MinHeight", "The minimum is 1.")
    assert (err.code, err.status) == ("InvalidParameter", 400)
    assert err.message == "Specified parameter MinHeight is not valid. The minimum is 1."
    assert invalid("Body").message == "Specified parameter Body is not valid."


def test_headers_are_given_when_built() -> None:
    err = Err.THROTTLING_USER(headers={"x-acs-retry-after": "2"})
    assert (err.code, err.status, dict(err.headers)) == ("Throttling.User", 400, {"x-acs-retry-after": "2"})
    assert dict(Err.THROTTLING().headers) == {}
    assert "code" not in inspect.signature(Err.THROTTLING.__call__).parameters  # a code comes from its row


def test_a_product_code_answers_an_image_failure() -> None:
    """ocr-api's code and status, the failure's own message, and the kind says what failed (metrics)."""
    err = Err.IMAGE_TIMEOUT.answered_as(Err.ILLEGAL_IMAGE_URL, "the download timed out")
    assert (err.code, err.status, err.kind) == ("illegalImageUrl", 400, Err.IMAGE_TIMEOUT)
    assert err.message == Err.IMAGE_TIMEOUT.template
    assert Err.IMAGE_DOWNLOAD.answered_as(None, "HTTP 404").code == "InvalidImage.Download"
