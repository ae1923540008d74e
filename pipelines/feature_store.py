"""Feature shards: .npz files mapping element ids to feature vectors.

Element ids are ``{video_id}/clip/{i}`` and ``{video_id}/text/{j}``: the
features pipeline writes them, the prepare pipeline joins them with the
annotations by id. A shard is written under a temporary name and renamed.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np


def clip_id(video_id: str, index: int) -> str:
    return f"{video_id}/clip/{index:05d}"


def text_id(video_id: str, index: int) -> str:
    return f"{video_id}/text/{index:05d}"


def video_of(element_id: str) -> str:
    return element_id.rsplit("/", 2)[0]


def write_shard(path, vectors: dict) -> str:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v, np.float32) for k, v in vectors.items()})
        os.replace(tmp, path)
    except BaseException:  # a full disk among others: no half-written shard stays
        tmp.unlink(missing_ok=True)
        raise
    return str(path)


def read_shard(path):
    """Yields (element_id, vector) of one shard."""
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            yield key, data[key]
