"""Converters: one small function per Aliyun response shape, grouped by product.

A converter takes a `Call` (the bound parameters plus the services it may use) and returns the
response body without `RequestId`. Mappings name converters as `<module>.<function>`.
"""

from __future__ import annotations

from . import all_text, async_jobs, imageenhan, imageseg, ocr, openplatform
from .call import Backends, Call, Converter

CONVERTERS: dict[str, Converter] = {
    "ocr.recognize_character": ocr.recognize_character,
    "ocr.recognize_general": ocr.recognize_general,
    "all_text.recognize_all_text": all_text.recognize_all_text,
    "imageseg.segment_body": imageseg.segment_body,
    "imageseg.segment_hd_body": imageseg.segment_hd_body,
    "imageseg.segment_hd_common_image": imageseg.segment_hd_common_image,
    "imageenhan.make_super_resolution_image": imageenhan.make_super_resolution_image,
    "imageenhan.generate_super_resolution_image": imageenhan.generate_super_resolution_image,
    "async_jobs.get_async_job_result": async_jobs.get_async_job_result,
    "openplatform.authorize_file_upload": openplatform.authorize_file_upload,
}

__all__ = ["CONVERTERS", "Backends", "Call", "Converter"]
