"""The Python alternative to the config function: `GET /config` with Powertools feature flags.

By default it reads through Powertools' own `AppConfigStore` (boto3's AppConfigData client:
`StartConfigurationSession`, then `GetLatestConfiguration`, cached for max_age = P), from the
application, environment and profile in LOCKSTEP_APPCONFIG_APPLICATION, _ENVIRONMENT and
_PROFILE; boto3 finds the endpoint, credentials and region in the usual AWS_* variables. The
profile must hold Powertools' schema (`{"flag": {"default": bool}}`).

With LOCKSTEP_LOCAL_FILE set it reads that Lockstep document from disk instead (a custom
StoreProvider, same caching): the benchmark's baseline without the AppConfig calls.
"""

import json
import os

from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags

PUBLIC_FLAGS = ("isFeatureXEnabled",)
MAX_AGE = int(os.environ.get("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "45"))

if os.environ.get("LOCKSTEP_LOCAL_FILE"):
    from local_store import LocalFileStore

    store = LocalFileStore(os.environ["LOCKSTEP_LOCAL_FILE"], max_age=MAX_AGE)
else:
    store = AppConfigStore(
        environment=os.environ["LOCKSTEP_APPCONFIG_ENVIRONMENT"],
        application=os.environ["LOCKSTEP_APPCONFIG_APPLICATION"],
        name=os.environ["LOCKSTEP_APPCONFIG_PROFILE"],
        max_age=MAX_AGE,
    )

feature_flags = FeatureFlags(store=store)


def handler(event, context):
    body = {name: feature_flags.evaluate(name=name, default=False) for name in PUBLIC_FLAGS}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": json.dumps(body),
    }
