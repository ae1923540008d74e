#!/usr/bin/env bash
# Serves every model under saved_models/ with TF Serving's container:
# REST on http://localhost:8501, gRPC on localhost:8500.
#   bash deploy/serve.sh                      # from the repository root
#   TFS_IMAGE=tensorflow/serving:2.19.0 bash deploy/serve.sh
# The image's TensorFlow should be at least as new as the one that exported
# the models (TF 2.21 here); an older one may not know every op in the graph.
# Each version's assets.extra/tf_serving_warmup_requests (tfalign.export --warmup)
# is replayed when it loads: the decoder's compilations happen before live requests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec docker run --rm -p 8500:8500 -p 8501:8501 \
  -v "$root/saved_models:/models:ro" -v "$root/deploy:/config:ro" \
  "${TFS_IMAGE:-tensorflow/serving:latest}" \
  --model_config_file=/config/models.config \
  --model_config_file_poll_wait_seconds=60 \
  --enable_batching=true --batching_parameters_file=/config/batching_parameters.txt \
  --enable_model_warmup=true \
  --xla_cpu_compilation_enabled=true  # the exported decoder is XLA-compiled (tfalign.export --no-xla: not)
