"""Powertools' `FeatureFlags.evaluate` per call, on the flags of bench/flags.json, from an in-memory
store (the same dict every call, so Powertools validates the schema once); and on the targeted
flag of bench/targeted.json (three rules that do not match, then a 25 % rollout) for its caller,
the twin of shared/targeting/benches/evaluate.rs. Prints JSON."""

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
with open(sys.argv[2], encoding="utf-8") as file:
    targeted = json.load(file)
targeted_flags = FeatureFlags(store=MemoryStore({"checkout_v2": targeted["powertools"]}))
context = {k: v for k, v in targeted["context"].items() if k != "targetingKey"}
# user_number 4711 % 100 = 11: inside the 25 % rollout, after three rules that do not match.
assert targeted_flags.evaluate(name="checkout_v2", context=context, default=False) is True
targeted_timer = timeit.Timer(
    'evaluate(name="checkout_v2", context=context, default=False)',
    globals={"evaluate": targeted_flags.evaluate, "context": context},
)
targeted_number, _ = targeted_timer.autorange()
targeted_repeats = targeted_timer.repeat(repeat=5 if quick else 15, number=targeted_number)
targeted_ns = [seconds / targeted_number * 1e9 for seconds in targeted_repeats]
print(
    json.dumps(
        {
            "median_ns": statistics.median(per_call_ns),
            "min_ns": min(per_call_ns),
            "calls_per_repeat": number,
            "repeats": len(repeats),
            "targeted_median_ns": statistics.median(targeted_ns),
            "targeted_calls_per_repeat": targeted_number,
        }
    )
)
