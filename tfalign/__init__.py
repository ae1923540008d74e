"""tfalign: NeuMATCH alignment of multimodal sequences, trained data-efficiently.

The data flows one way through the sub-packages: ``data`` -> ``layers`` ->
``model`` -> ``optimizers``/``training`` -> ``evaluation``; nothing imports
backwards.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (no GPU found, CPU features) drowns the
# commands' own output; users can still set the variable themselves.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
