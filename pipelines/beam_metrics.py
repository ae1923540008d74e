"""Reading a finished pipeline's counters."""

import apache_beam as beam


def counter_totals(result, namespace: str) -> dict:
    """Counter totals; a counter used by several steps is reported once a step."""
    totals = {}
    for counter in result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace))["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + counter.committed
    return totals


def run_pipeline(pipeline, out_dir, stage: str):
    """Runs the pipeline; a failure inside it (a bad input that got past the
    checks) is one error line, and the output folder it started is removed."""
    import pathlib
    import shutil

    from tfalign.errors import UserError, first_line
    from tfalign.files import DiskFullError, disk_full_reason, removed_on_failure

    with removed_on_failure(out_dir):
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except Exception as error:  # Beam re-raises a worker's error with the step appended
            reason = disk_full_reason(error)
            if reason is None:
                raise UserError(f"{stage} failed: {type(error).__name__}: {first_line(error)[:400]}") from None
            for temp in pathlib.Path(out_dir).glob("**/beam-temp-*"):  # the sinks' unfinished shards
                shutil.rmtree(temp, ignore_errors=True)
            raise DiskFullError(f"{stage} could not write its shards in {out_dir}: {reason}; its unfinished shards "
                                f"were removed: free space and run it again") from None
    return result


def check_beam_flags(flags: list[str], prog: str) -> None:
    """Options the command does not know go to Beam, but only Beam's own: a
    misspelt flag is an error, not a silently ignored option."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from tfalign.errors import UserError

    known = set(PipelineOptions([]).get_all_options())
    for flag in flags:
        if flag.startswith("-"):
            name = flag.lstrip("-").split("=", 1)[0]
            if name not in known and name.replace("-", "_") not in known:
                raise UserError(f"unrecognized argument {flag.split('=', 1)[0]}: neither an option of {prog} "
                                f"(see --help) nor a Beam pipeline option")
        elif flags.index(flag) == 0:
            raise UserError(f"unrecognized argument {flag!r} (see {prog} --help)")
