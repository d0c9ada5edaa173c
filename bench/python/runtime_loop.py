"""A tiny Lambda runtime interface client: import the handler, then next -> handler -> response.

It does less than Lambda's own Python runtime (awslambdaric: no context object details, no
logging setup, no error formatting), so it flatters the Python side of the cold-start comparison.
Usage: python runtime_loop.py MODULE.FUNCTION
"""

import http.client
import json
import os
import sys

module_name, function_name = sys.argv[1].rsplit(".", 1)
handler = getattr(__import__(module_name), function_name)

connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    response = connection.getresponse()
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(response.read())
    result = json.dumps(handler(event, None)).encode()
    connection.request(
        "POST",
        f"/2018-06-01/runtime/invocation/{request_id}/response",
        body=result,
        headers={"Content-Type": "application/json"},
    )
    connection.getresponse().read()
