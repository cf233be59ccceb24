"""The Python equivalent of launch-host for the init-time comparison: the five clients
promote-image's equivalent creates (imported from it, so they are created at import here too)
plus SQS for the readiness queue, then the same minimal runtime loop.
"""

import boto3

import handler

sqs = boto3.client("sqs")

if __name__ == "__main__":
    handler.main()
