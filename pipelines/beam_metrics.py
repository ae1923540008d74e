"""Reading a finished pipeline's counters."""

import apache_beam as beam


def counter_totals(result, namespace: str) -> dict:
    """Counter totals; a counter used by several steps is reported once a step."""
    totals = {}
    for counter in result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace))["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + counter.committed
    return totals
