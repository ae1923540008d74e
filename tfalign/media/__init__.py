"""From media files to clips and texts, and back to subtitles (the ``media`` extra).

- ``video``: decoding with PyAV: a video's facts (``probe``) and the frames a
  clip needs, seeking forward, never the whole video in memory;
- ``clips``: a video cut into clips: shots found by PySceneDetect's content
  detector (long shots split), or fixed windows;
- ``text_encoding``: a text file's bytes as text (its encoding detected);
- ``subtitle_files``: ``.srt`` / ``.vtt`` / ``.ass`` / ``.ssa`` files read with
  the place of every timestamp, and written back with new times;
- ``narration``: the texts of a subtitle file (with their cue times) or of a
  plain-text script (one text a line, or sentences by pysbd);
- ``subtitles``: an alignment written back: the narration file retimed in
  place, or plain ``.srt`` and ``.vtt``;
- ``extractors``: the frame and text encoders (keras.applications, keras-hub,
  TF-Hub folders) and ``FeatureExtractors``, the record of them an export keeps;
- ``episodes``: a video's clips and its timed cues as an annotation record
  (the ground truth a cue's span gives);
- ``samples``: generated videos of known scenes and their subtitles (tests,
  the demo, the benchmark).

Install with ``pip install -e ".[media]"``. The level of the data flow: after
``tfalign.data`` (it makes and reads alignments), before configs and models.
"""

from __future__ import annotations

import importlib

from tfalign.errors import UserError

EXTRA = 'pip install -e ".[media]"'


def require(module: str, purpose: str):
    """Imports an optional media library, or a one-line error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{purpose} needs the Python package {module!r}: install the media extra ({EXTRA})") \
            from None
