"""API Gateway's and Lambda's payload limits, as the embedded backend enforces them.

The kit's Lambda routes are REST API methods with a Lambda proxy integration (the kit's
src/api-deployment/lambda-feature-construct.ts: `LambdaIntegration(appFunction, { proxy: true })`, no
binary media types). So a request passes three gates, each with its own answer:
- the REST API's body limit, 10 MiB: the REQUEST_TOO_LARGE gateway response, 413 `{"message":"Request
  Too Long"}`;
- the Lambda request limit on the whole proxy event (the body as a JSON string, headers twice, the
  requestContext), 6,291,456 bytes (Lambda's RequestEntityTooLargeException: "Request must be smaller
  than 6291456 bytes for the InvokeFunction operation"): API Gateway answers 413 `Request Too Long` too;
- the Lambda answer limit on the handler's whole return value (`lambda_return`'s statusCode, headers and
  body string), 6,291,556 bytes (Function.ResponseSizeTooLarge): API Gateway answers 502
  `{"message": "Internal server error"}`, as for any failed Lambda.
The numbers come from `KitLimits` (proxy/config/kit.py), so a test can shrink them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

REQUEST_TOO_LONG = "Request Too Long"  # API Gateway's REQUEST_TOO_LARGE gateway response, status 413
# aikits_utils.py `lambda_return`: the headers every kit answer carries
KIT_HEADERS = {"Access-Control-Allow-Headers": "*", "Access-Control-Allow-Origin": "*",
               "Access-Control-Allow-Methods": "*"}


def event_bytes(method: str, path: str, stage: str, headers: Mapping[str, str], body: bytes,
                region: str) -> int:
    """Size of the Lambda proxy event API Gateway would build for this request (format 1.0)."""
    resource = "/" + path.strip("/").partition("/")[2]
    now = time.time()
    event = {
        "resource": resource, "path": resource, "httpMethod": method,
        "headers": dict(headers), "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123", "resourcePath": resource, "httpMethod": method,
            "extendedRequestId": "AbCdEfGhIjKlMnO=", "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{resource}", "accountId": "000000000000", "protocol": "HTTP/1.1",
            "stage": stage, "domainPrefix": "abcdefghij", "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"cognitoIdentityPoolId": None, "accountId": "000000000000", "cognitoIdentityId": None,
                         "caller": "AIDAEXAMPLE", "sourceIp": "10.0.0.1", "principalOrgId": None,
                         "accessKey": "AKIDEXAMPLE", "cognitoAuthenticationType": None,
                         "cognitoAuthenticationProvider": None, "userArn": "arn:aws-cn:iam::000000000000:user/x",
                         "userAgent": headers.get("User-Agent", ""), "user": "AIDAEXAMPLE"},
            "domainName": f"abcdefghij.execute-api.{region}.amazonaws.com.cn", "apiId": "abcdefghij",
        },
        "body": body.decode("utf-8", "replace"), "isBase64Encoded": False,
    }
    return len(json.dumps(event).encode())


def answer_bytes(status: int, body: bytes) -> int:
    """Size of the handler's return value, `lambda_return(status, body)`, as Lambda serialises it."""
    wrapper = json.dumps({"statusCode": status, "headers": KIT_HEADERS, "body": ""}).encode()
    # the body string's own escaping: every quote and backslash doubles (JSON text has no control characters)
    return len(wrapper) + len(body) + body.count(b'"') + body.count(b"\\")
