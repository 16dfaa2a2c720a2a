"""The one error model: every failure a caller sees is an `AliyunError` carrying Aliyun's code and status.

Codes are an enum that carries status and message (s3proxy's `S3ErrorCode` idea), so a code can never
be sent with the wrong HTTP status. Codes whose name embeds a parameter (`MissingImageURL`) are built
by the helpers at the bottom.
"""

from __future__ import annotations

from enum import Enum


class Err(Enum):
    """Aliyun error codes the proxy emits: (code, HTTP status, message)."""

    MISSING_PARAMETER = ("MissingParameter", 400, 'The input parameter "{0}" that is mandatory for '
                         "processing this request is not supplied.")
    INVALID_PARAMETER = ("InvalidParameter", 400, "Specified parameter {0} is not valid.")
    INVALID_ACTION = ("InvalidAction.NotFound", 404,
                      "Specified api is not found, please check your url and method.")
    INVALID_VERSION = ("InvalidVersion", 400, "Specified parameter Version is not valid.")
    INCOMPLETE_SIGNATURE = ("IncompleteSignature", 400,
                            "The request signature does not conform to Aliyun standards.")
    SIGNATURE_MISMATCH = ("SignatureDoesNotMatch", 400,
                          "Specified signature is not matched with our calculation. "
                          "server string to sign is:{0}")
    NONCE_USED = ("SignatureNonceUsed", 400, "Specified signature nonce was used already.")
    TIMESTAMP_EXPIRED = ("InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired.")
    TIMESTAMP_FORMAT = ("InvalidTimeStamp.Format", 400,
                        "Specified time stamp or date value is not well formatted.")
    ACCESS_KEY_NOT_FOUND = ("InvalidAccessKeyId.NotFound", 404, "Specified access key is not found.")
    SECURITY_TOKEN_INVALID = ("InvalidSecurityToken.Mismatch", 400,
                              "Specified security token is not valid for this access key.")
    IMAGE_URL = ("InvalidImage.URL", 400, "The image URL is not allowed: {0}")
    IMAGE_DOWNLOAD = ("InvalidImage.Download", 400, "The image cannot be downloaded: {0}")
    IMAGE_TIMEOUT = ("InvalidImage.Timeout", 400, "The image download timed out.")
    IMAGE_FORMAT = ("InvalidImage.Format", 400, "The image format is not supported: {0}")
    IMAGE_SIZE = ("InvalidImage.Size", 400, "The image is too large: {0}")
    IMAGE_RESOLUTION = ("InvalidImage.Resolution", 400, "The image resolution is not supported: {0}")
    INPUT_NOT_SERVED = ("invalidInputParameter", 400, "{0}")  # ocr-api's own code (RecognizeAllText errorCodes)
    JOB_NOT_FOUND = ("InvalidParameter.JobId", 400, "Specified JobId {0} does not exist or has expired.")
    THROTTLING = ("Throttling", 400, "Request was denied due to user flow control.")
    TIMEOUT = ("Timeout", 408, "The request has timed out.")
    INTERNAL_ERROR = ("InternalError", 500, "The request processing has failed due to some unknown error.")
    SERVICE_UNAVAILABLE = ("ServiceUnavailable", 503, "The service is unavailable.")

    def __init__(self, code: str, status: int, template: str) -> None:
        self.code = code
        self.status = status
        self.template = template

    def __call__(self, *args: object, code: str | None = None) -> AliyunError:
        """Build the exception: `raise Err.IMAGE_SIZE("over 3 MB")`."""
        return AliyunError(code or self.code, self.status, self.template.format(*args), self)


class AliyunError(Exception):
    """Raised anywhere on the request path; the handler chain turns it into an Aliyun error body."""

    def __init__(self, code: str, status: int, message: str, kind: Err | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.kind = kind
        self.headers: dict[str, str] = {}


def missing(param: str) -> AliyunError:
    """Aliyun names the parameter in the code: `MissingImageURL`."""
    return AliyunError(f"Missing{param}", 400, f"{param} is mandatory for this action.", Err.MISSING_PARAMETER)


def invalid(param: str, why: str = "") -> AliyunError:
    message = Err.INVALID_PARAMETER.template.format(param) + (f" {why}" if why else "")
    return AliyunError(Err.INVALID_PARAMETER.code, 400, message, Err.INVALID_PARAMETER)
