"""The Python function a team would otherwise write for promote-image, reduced to what the
init-time comparison needs: the same five AWS clients created at import, as the AWS
documentation recommends, and a minimal runtime loop on the Lambda Runtime API.

Its handler does not promote anything; only the time from process start to the first poll
of the Runtime API is compared, and that is spent in the interpreter, the imports and the
client creation, all of which are here exactly as a real function would have them.
"""

import json
import os
import urllib.request

import boto3

imagebuilder = boto3.client("imagebuilder")
ec2 = boto3.client("ec2")
ssm = boto3.client("ssm")
sns = boto3.client("sns")
dynamodb = boto3.client("dynamodb")

RUNTIME = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def handler(event, _context):
    detail = event.get("detail-type") if isinstance(event, dict) else None
    return {"decision": "ignore", "reason": f"benchmark stand-in; received {detail!r}"}


def post(path, body):
    data = json.dumps(body).encode()
    request = urllib.request.Request(f"{RUNTIME}{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).close()


def main():
    while True:
        with urllib.request.urlopen(f"{RUNTIME}/invocation/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read() or b"null")
        try:
            result = handler(event, None)
        except Exception as err:  # reported to Lambda like the managed runtime does
            post(f"/invocation/{request_id}/error",
                 {"errorType": type(err).__name__, "errorMessage": str(err)})
            continue
        post(f"/invocation/{request_id}/response", result)


if __name__ == "__main__":
    main()
