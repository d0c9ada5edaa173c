"""The oracle of lockstep-targeting's differential test (powertools_differential.rs): AWS Lambda
Powertools' own feature flags (the pinned release, ./scripts/venv powertools) evaluating the cases
the test generates.

Usage: powertools_oracle.py CASES.json > ANSWERS.json
(ANSWERS.json: {"powertools": its version, "answers": [one per case, in order]})

CASES.json is a JSON array of {"definition": {one feature}, "context": {...}, "now": "RFC 3339"}.
Each case is evaluated by the real FeatureFlags over an in-memory StoreProvider holding
{"flag": definition}, so the real SchemaValidator runs (inside FeatureFlags.get_configuration),
at the fixed instant `now`: comparators._get_now_from_timezone, the one clock read of
Powertools' time-based actions, is replaced by the instant converted to the zone asked for.

The answer for each case, in order, is {"valid": false, "error": ...} when Powertools raises
SchemaValidationError, else {"valid": true, "value": <the evaluation>, "conditions": [[bool]]},
the last being Powertools' verdict on every condition of every rule (in order), from the same
FeatureFlags._match_by_action its evaluation calls, with the same arguments. Any other exception
is {"valid": null, "error": ...}: the test fails on it.

The test runs this with TZ=:UTC, as Lambda sets it: Powertools reads a missing or empty
TIMEZONE as the process's zone.
"""

import json
import sys
import warnings
from datetime import datetime

from aws_lambda_powertools.shared.version import VERSION
from aws_lambda_powertools.utilities.feature_flags import FeatureFlags, StoreProvider, comparators, schema
from aws_lambda_powertools.utilities.feature_flags.exceptions import SchemaValidationError
from aws_lambda_powertools.warnings import PowertoolsUserWarning
from dateutil.tz import gettz

warnings.simplefilter("ignore", PowertoolsUserWarning)

FLAG = "flag"
TIME_ACTIONS = (
    schema.RuleAction.SCHEDULE_BETWEEN_TIME_RANGE.value,
    schema.RuleAction.SCHEDULE_BETWEEN_DATETIME_RANGE.value,
    schema.RuleAction.SCHEDULE_BETWEEN_DAYS_OF_WEEK.value,
)

now: datetime = datetime.now(gettz("UTC"))


def fixed_now(timezone):
    # Powertools' own default for a missing zone, then the fixed instant on that zone's clock.
    return now.astimezone(gettz("UTC") if timezone is None else timezone)


comparators._get_now_from_timezone = fixed_now


class Store(StoreProvider):
    def __init__(self, features):
        self.features = features

    @property
    def get_raw_configuration(self):
        return self.features

    def get_configuration(self):
        return self.features


def verdicts(flags, feature, context):
    """Powertools' verdict on each condition, as FeatureFlags._evaluate_conditions derives them."""
    rules = feature.get(schema.RULES_KEY) or {}
    answer = []
    for rule_name, rule in rules.items():
        row = []
        for condition in rule.get(schema.CONDITIONS_KEY) or []:
            key = condition.get(schema.CONDITION_KEY, "")
            action = condition.get(schema.CONDITION_ACTION, "")
            if action in TIME_ACTIONS:
                present, value = True, key
            else:
                present, value = key in context, context.get(key)
            row.append(
                flags._match_by_action(
                    action=action,
                    condition_value=condition.get(schema.CONDITION_VALUE),
                    context_value=value,
                    context_key_present=present,
                    feature_name=FLAG,
                    rule_name=rule_name,
                    context_key=key,
                )
            )
        answer.append(row)
    return answer


def evaluate(case):
    global now
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00")).astimezone(gettz("UTC"))
    flags = FeatureFlags(store=Store({FLAG: case["definition"]}))
    context = case["context"]
    try:
        # A sentinel default: the flag exists, so Powertools never answers with it.
        value = flags.evaluate(name=FLAG, context=context, default={"not": "evaluated"})
    except SchemaValidationError as error:
        return {"valid": False, "error": str(error)}
    except Exception as error:  # noqa: BLE001 (reported, and the test fails on it)
        return {"valid": None, "error": f"{type(error).__name__}: {error}"}
    return {"valid": True, "value": value, "conditions": verdicts(flags, case["definition"], context)}


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        cases = json.load(file)
    json.dump({"powertools": VERSION, "answers": [evaluate(case) for case in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
