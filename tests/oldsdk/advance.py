"""Run an older Python SDK generation's `segment_body_advance` (alibabacloud_imageseg20191230 2.0.0, which
uploads with the OSS SDK over the client's own protocol). Run by tests/test_uploads_old_sdk.py in a
subprocess whose PYTHONPATH puts that generation first; argv[1] is a JSON job, the answer body is printed."""

import io
import json
import sys

from alibabacloud_imageseg20191230 import models
from alibabacloud_imageseg20191230.client import Client
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_util.models import RuntimeOptions

job = json.loads(sys.argv[1])
# The app's code as it is: Aliyun's endpoints, protocol http; HTTP_PROXY (set by the test) reaches the proxy.
client = Client(Config(access_key_id=job["key"], access_key_secret=job["secret"], region_id="cn-shanghai",
                       endpoint="imageseg.cn-shanghai.aliyuncs.com", protocol="http", read_timeout=60000))
with open(job["file"], "rb") as f:
    data = f.read()
resp = client.segment_body_advance(models.SegmentBodyAdvanceRequest(image_urlobject=io.BytesIO(data),
                                                                    return_form="mask"), RuntimeOptions())
print(json.dumps(resp.body.to_map()))
