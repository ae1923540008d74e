"""Apache Beam pipelines: from videos and narrations to features, and from
annotations and features to the episode TFRecords the trainer reads.

    python -m pipelines.features ...   frames and texts -> feature shards
    python -m pipelines.prepare ...    annotations + feature shards -> episodes

Both run on the DirectRunner by default; any other Beam pipeline option
(--runner DataflowRunner, --project ..., FlinkRunner, ...) is passed through.
"""
