"""Powertools' `FeatureFlags.evaluate` per call, on the flags of bench/flags.json, from an in-memory
store (the same dict every call, so Powertools validates the schema once). Prints JSON."""

import json
import statistics
import sys
import timeit

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags

from local_store import MemoryStore

quick = "--quick" in sys.argv
with open(sys.argv[1], encoding="utf-8") as file:
    flags = json.load(file)
feature_flags = FeatureFlags(store=MemoryStore(flags))
assert feature_flags.evaluate(name="isFeatureXEnabled", default=False) is True

timer = timeit.Timer(
    'evaluate(name="isFeatureXEnabled", default=False)',
    globals={"evaluate": feature_flags.evaluate},
)
number, _ = timer.autorange()  # enough calls for at least 0.2 s per repeat
repeats = timer.repeat(repeat=5 if quick else 15, number=number)
per_call_ns = [seconds / number * 1e9 for seconds in repeats]
print(
    json.dumps(
        {
            "median_ns": statistics.median(per_call_ns),
            "min_ns": min(per_call_ns),
            "calls_per_repeat": number,
            "repeats": len(repeats),
        }
    )
)
