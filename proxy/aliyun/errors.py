"""The one error model: every failure a caller sees is an `AliyunError` built from a row of the `Err` table.

Each row carries the code, the HTTP status and the message (s3proxy's `S3ErrorCode` idea), so a code can
never be sent with the wrong HTTP status, plus the facts others read from it: whether it is a failed
authentication (`signature`, counted as a signature rejection) and which image failure it reports
(`image_kind`: the metric's reason, and the key a mapping's `image.errors` uses to name the row its
product answers instead, ocr-api's `illegalImageUrl`). `{0}` in a code or message is filled from the
arguments (`Missing{0}` names the parameter). An error is complete once built: nothing changes it after.
`OssErr` is the same kind of table for OSS's own codes (the result URLs the proxy serves itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

ImageKind = Literal["url", "download", "timeout", "format", "size", "resolution"]


@dataclass(frozen=True)
class Row:
    code: str
    status: int
    template: str
    image_kind: ImageKind | None = None  # the image failure this row reports
    signature: bool = False  # a caller refused by authentication


class Err(Enum):
    """Aliyun error codes the proxy emits."""

    MISSING = Row("Missing{0}", 400, "{0} is mandatory for this action.")  # Aliyun names the parameter
    INVALID_PARAMETER = Row("InvalidParameter", 400, "Specified parameter {0} is not valid.{1}")
    INVALID_ACTION = Row("InvalidAction.NotFound", 404, "Specified api is not found, please check your url and method.")
    INVALID_VERSION = Row("InvalidVersion", 400, "Specified parameter Version is not valid.")
    MISSING_ACCESS_KEY_ID = Row("MissingAccessKeyId", 400, "AccessKeyId is mandatory for this action.", signature=True)
    MISSING_SIGNATURE = Row("MissingSignature", 400, "Signature is mandatory for this action.", signature=True)
    MISSING_SIGNATURE_NONCE = Row("MissingSignatureNonce", 400, "SignatureNonce is mandatory for this action.",
                                  signature=True)
    MISSING_TIMESTAMP = Row("MissingTimestamp", 400, "Timestamp is mandatory for this action.", signature=True)
    INCOMPLETE_SIGNATURE = Row("IncompleteSignature", 400,
                               "The request signature does not conform to Aliyun standards.", signature=True)
    SIGNATURE_MISMATCH = Row("SignatureDoesNotMatch", 400, "Specified signature is not matched with our "
                             "calculation. server string to sign is:{0}", signature=True)
    NONCE_USED = Row("SignatureNonceUsed", 400, "Specified signature nonce was used already.", signature=True)
    TIMESTAMP_EXPIRED = Row("InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired.",
                            signature=True)
    TIMESTAMP_FORMAT = Row("InvalidTimeStamp.Format", 400,
                           "Specified time stamp or date value is not well formatted.", signature=True)
    ACCESS_KEY_NOT_FOUND = Row("InvalidAccessKeyId.NotFound", 404, "Specified access key is not found.",
                               signature=True)
    SECURITY_TOKEN_INVALID = Row("InvalidSecurityToken.Mismatch", 400,
                                 "Specified security token is not valid for this access key.", signature=True)
    IMAGE_URL = Row("InvalidImage.URL", 400, "The image URL is not allowed: {0}", image_kind="url")
    IMAGE_DOWNLOAD = Row("InvalidImage.Download", 400, "The image cannot be downloaded: {0}", image_kind="download")
    IMAGE_TIMEOUT = Row("InvalidImage.Timeout", 400, "The image download timed out.", image_kind="timeout")
    IMAGE_FORMAT = Row("InvalidImage.Format", 400, "The image format is not supported: {0}", image_kind="format")
    IMAGE_SIZE = Row("InvalidImage.Size", 400, "The image is too large: {0}", image_kind="size")
    IMAGE_RESOLUTION = Row("InvalidImage.Resolution", 400, "The image resolution is not supported: {0}",
                           image_kind="resolution")
    # ocr-api's own codes (its errorCodes metadata: lower camel case)
    ILLEGAL_IMAGE_URL = Row("illegalImageUrl", 400, "The image URL is unavailable or has timed out.")
    INPUT_NOT_SERVED = Row("invalidInputParameter", 400, "{0}")
    JOB_NOT_FOUND = Row("InvalidParameter.JobId", 400, "Specified JobId {0} does not exist or has expired.")
    THROTTLING = Row("Throttling", 400, "Request was denied due to user flow control.")
    THROTTLING_USER = Row("Throttling.User", 400, "Request was denied due to user flow control.")
    TIMEOUT = Row("Timeout", 408, "The request has timed out.")
    JOB_TIMEOUT = Row("Timeout", 408, "The job did not finish before its deadline.")
    JOB_QUEUE_TIMEOUT = Row("Timeout", 408, "The job waited in the queue past its deadline.")
    INTERNAL_ERROR = Row("InternalError", 500, "The request processing has failed due to some unknown error.")
    SERVICE_UNAVAILABLE = Row("ServiceUnavailable", 503, "The service is unavailable.")
    JOB_STOPPED = Row("ServiceUnavailable", 503, "The service stopped before the job finished; submit it again.")

    def __init__(self, row: Row) -> None:
        self.code = row.code
        self.status = row.status
        self.template = row.template
        self.image_kind = row.image_kind
        self.signature = row.signature

    def __call__(self, *args: object, headers: Mapping[str, str] | None = None) -> AliyunError:
        """Build the exception: `raise Err.IMAGE_SIZE("over 3 MB")`."""
        return AliyunError(self, args, headers)

    def answered_as(self, answer: Err | None, *args: object) -> AliyunError:
        """This failure answered with another row's code and status (a product's own code for an image
        failure); the message still says what failed, as does `kind` (the metric's reason)."""
        return AliyunError(self, args, None, answer)


class OssErr(Enum):
    """OSS's own codes, for the presigned result URLs the proxy serves itself (proxy/results/local.py) and the
    PostObject uploads it takes (proxy/uploads/): another product's envelope (XML `<Error>`) and vocabulary,
    where `SignatureDoesNotMatch` is a 403."""

    OBJECT_NAME_INVALID = Row("AccessDenied", 403, "Invalid object name.")
    NOT_SIGNED = Row("AccessDenied", 403, "Request must carry Expires and Signature.")
    EXPIRED = Row("AccessDenied", 403, "Request has expired.")
    SIGNATURE_MISMATCH = Row("SignatureDoesNotMatch", 403,
                             "The request signature we calculated does not match the signature you provided.")
    NO_SUCH_KEY = Row("NoSuchKey", 404, "The specified key does not exist.")
    # PostObject uploads (proxy/uploads/): what OSS answers a form it refuses
    ANONYMOUS = Row("AccessDenied", 403, "Anonymous access is forbidden for this operation.")
    POLICY_EXPIRED = Row("AccessDenied", 403, "Invalid according to Policy: Policy expired.")
    POLICY_CONDITION = Row("AccessDenied", 403, "Invalid according to Policy: Policy Condition failed: {0}")
    UNKNOWN_KEY_ID = Row("InvalidAccessKeyId", 403, "The OSS Access Key Id you provided does not exist in our records.")
    POLICY_INVALID = Row("InvalidPolicyDocument", 400, "Invalid Policy: {0}")
    NO_SUCH_BUCKET = Row("NoSuchBucket", 404, "The specified bucket does not exist.")
    METHOD_NOT_ALLOWED = Row("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
    BAD_FORM = Row("InvalidArgument", 400, "{0}")
    ALREADY_EXISTS = Row("FileAlreadyExists", 409,
                         "The object you specified already exists and can not be overwritten.")
    TOO_LARGE = Row("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size.")
    TOO_SMALL = Row("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed size.")
    REQUEST_TIMEOUT = Row("RequestTimeout", 400, "Your socket connection to the server was not read from or written "
                          "to within the timeout period.")
    UNAVAILABLE = Row("ServiceUnavailable", 503, "Please reduce your request rate.")

    def __init__(self, row: Row) -> None:
        self.code = row.code
        self.status = row.status
        self.template = row.template

    def message(self, *args: object) -> str:
        return self.template.format(*args)


class AliyunError(Exception):
    """Raised anywhere on the request path; the handler chain turns it into an Aliyun error body.
    `kind` is the row that says what failed (and its message); code and status come from the row answered."""

    def __init__(self, kind: Err, args: tuple[object, ...], headers: Mapping[str, str] | None = None,
                 answer: Err | None = None) -> None:
        row = answer or kind
        self.code = row.code.format(*args)
        self.status = row.status
        self.message = kind.template.format(*args)
        self.kind = kind
        self.headers: Mapping[str, str] = dict(headers or {})
        super().__init__(f"{self.code}: {self.message}")

    def hinted(self, hint: str) -> AliyunError:
        """A copy whose message ends with `hint` (how to fix it): the same code, status, kind and headers."""
        other = AliyunError.__new__(AliyunError)
        other.__dict__.update(self.__dict__, message=f"{self.message}; {hint}")
        Exception.__init__(other, f"{other.code}: {other.message}")
        return other


def missing(param: str) -> AliyunError:
    """Aliyun names the parameter in the code: `MissingImageURL`."""
    return Err.MISSING(param)


def invalid(param: str, why: str = "", headers: Mapping[str, str] | None = None) -> AliyunError:
    """`InvalidParameter`, with why the value was refused."""
    return Err.INVALID_PARAMETER(param, f" {why}" if why else "", headers=headers)
