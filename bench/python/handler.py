"""The Python alternative to the config function: `GET /config` with Powertools feature flags,
on the same local flags file (LOCKSTEP_LOCAL_FILE), cached for P like Powertools' AppConfigStore."""

import json
import os

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags

from local_store import LocalFileStore

PUBLIC_FLAGS = ("isFeatureXEnabled",)

feature_flags = FeatureFlags(
    store=LocalFileStore(
        os.environ["LOCKSTEP_LOCAL_FILE"],
        max_age=float(os.environ.get("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "45")),
    )
)


def handler(event, context):
    body = {name: feature_flags.evaluate(name=name, default=False) for name in PUBLIC_FLAGS}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": json.dumps(body),
    }
