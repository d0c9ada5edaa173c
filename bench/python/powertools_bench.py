"""Powertools' `FeatureFlags.evaluate` per call, on the flags of bench/flags.json, from an in-memory
store (the same dict every call, so Powertools validates the schema once); and on the targeted
flag of bench/targeted.json (three rules that do not match, then a 25 % rollout) for its caller,
the twin of shared/targeting/benches/evaluate.rs; and Powertools' `Metrics` for one invocation's
document with the metrics our config function writes on a fresh cache (`Requests`, `ConfigAge`
under `service`, `function_name` and `route`), serialized to its JSON line but not printed, the
twin of the "config function with metrics" criterion bench. Prints JSON."""

import json
import statistics
import sys
import timeit

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
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
metrics = Metrics(namespace="Lockstep", service="lockstep")


def one_invocation() -> str:
    """What a Powertools function does per invocation for these metrics: add them, then serialize
    the document (`flush_metrics` would also print it; printing is left out on both sides)."""
    metrics.add_dimension(name="function_name", value="config")
    metrics.add_dimension(name="route", value="GET /config")
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ConfigAge", unit=MetricUnit.Milliseconds, value=1200)
    line = json.dumps(metrics.serialize_metric_set(), separators=(",", ":"))
    metrics.clear_metrics()
    return line


assert '"Requests":[1.0]' in one_invocation() or '"Requests":1' in one_invocation()
metrics_timer = timeit.Timer("one_invocation()", globals={"one_invocation": one_invocation})
metrics_number, _ = metrics_timer.autorange()
metrics_repeats = metrics_timer.repeat(repeat=5 if quick else 15, number=metrics_number)
metrics_ns = [seconds / metrics_number * 1e9 for seconds in metrics_repeats]
print(
    json.dumps(
        {
            "metrics_median_ns": statistics.median(metrics_ns),
            "median_ns": statistics.median(per_call_ns),
            "min_ns": min(per_call_ns),
            "calls_per_repeat": number,
            "repeats": len(repeats),
            "targeted_median_ns": statistics.median(targeted_ns),
            "targeted_calls_per_repeat": targeted_number,
        }
    )
)
