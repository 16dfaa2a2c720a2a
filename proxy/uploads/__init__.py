"""Local-file uploads as the SDKs' `*Advance` methods make them: an OSS PostObject policy handed out by
`AuthorizeFileUpload` (policy.py), the PostObject endpoint that checks it as OSS does (endpoint.py), and the
reading of the proxy's own objects (uploads, earlier results) straight from the store (own.py)."""

from .policy import UploadAuthority

__all__ = ["UploadAuthority"]
