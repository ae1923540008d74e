"""Episode storage: sharded TFRecords of tf.train.SequenceExample, and .npz.

Every file is written under a temporary name and renamed into place, so an
interrupted write never leaves a readable but truncated file. A TFRecord
folder carries ``manifest.json`` (feature widths, counts, shard names), which
is written last: a folder without it is not a finished dataset.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from tfalign.data.episode import Episode, EpisodeError, validate_episodes
from tfalign.errors import first_line
from tfalign.files import atomic_file, write_json_atomic, writing

MANIFEST = "manifest.json"
_MATRIX_FIELDS = ("clip_features", "text_features", "clip_times", "text_spans", "unmatched_spans")
# What an unlabelled episode has (the rest is its ground truth).
_UNLABELLED_FIELDS = ("clip_features", "text_features", "clip_times")


def _fields_of(episode) -> tuple:
    return _MATRIX_FIELDS + ("clip_to_text",) if episode.labelled else _UNLABELLED_FIELDS




def episode_to_example(episode: Episode):
    import tensorflow as tf

    def floats(rows):
        return tf.train.FeatureList(feature=[tf.train.Feature(float_list=tf.train.FloatList(value=r)) for r in rows])

    lists = {name: floats(np.asarray(getattr(episode, name), np.float32)) for name in _MATRIX_FIELDS
             if name in _fields_of(episode)}
    if episode.labelled:
        lists["clip_to_text"] = tf.train.FeatureList(
            feature=[tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)])) for v in episode.clip_to_text])
    context = tf.train.Features(feature={
        "video_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[episode.video_id.encode()])),
        "clip_dim": tf.train.Feature(int64_list=tf.train.Int64List(value=[episode.clip_features.shape[1]])),
        "text_dim": tf.train.Feature(int64_list=tf.train.Int64List(value=[episode.text_features.shape[1]])),
    })
    return tf.train.SequenceExample(context=context, feature_lists=tf.train.FeatureLists(feature_list=lists))


def example_to_episode(serialized: bytes, where: str = "record", labelled: bool = True) -> Episode:
    import tensorflow as tf

    try:
        example = tf.train.SequenceExample.FromString(serialized)
    except Exception as error:  # protobuf's DecodeError
        raise EpisodeError(f"{where}: not a tf.train.SequenceExample ({error})") from None
    try:
        return _example_fields(example, where, labelled)
    except (KeyError, IndexError, UnicodeDecodeError) as error:
        raise EpisodeError(f"{where}: a malformed episode record ({type(error).__name__}: {error})") from None


def _example_fields(example, where: str, labelled: bool = True) -> Episode:
    context = example.context.feature
    lists = example.feature_lists.feature_list
    video_id = context["video_id"].bytes_list.value[0].decode() if "video_id" in context else "?"
    for key in ("clip_dim", "text_dim"):
        if key not in context or not context[key].int64_list.value:
            raise EpisodeError(f"{where}: episode {video_id!r}: context field {key!r} is missing")
    fields = {}
    wanted = _MATRIX_FIELDS + ("clip_to_text",) if labelled else _UNLABELLED_FIELDS
    for name in wanted:
        if name not in lists and name != "unmatched_spans":
            raise EpisodeError(f"{where}: episode {video_id!r}: field {name!r} is missing")
    widths = {"clip_features": context["clip_dim"].int64_list.value[0],
              "text_features": context["text_dim"].int64_list.value[0]}
    for name in (n for n in _MATRIX_FIELDS if n in wanted):
        rows = [list(f.float_list.value) for f in lists[name].feature] if name in lists else []
        width = widths.get(name, 2)
        if any(len(r) != width for r in rows):
            raise EpisodeError(f"{where}: episode {video_id!r}: field {name!r}: rows are not all of width {width}")
        fields[name] = np.asarray(rows, np.float32).reshape(-1, width)
    if labelled:
        fields["clip_to_text"] = np.asarray([f.int64_list.value[0] for f in lists["clip_to_text"].feature], np.int64)
    return Episode(video_id=video_id, **fields)


def write_tfrecords(episodes, folder, num_shards: int = 1, extra_manifest: dict | None = None) -> pathlib.Path:
    """Writes validated episodes as sharded TFRecords plus manifest.json."""
    import tensorflow as tf

    episodes = validate_episodes(episodes)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    num_shards = max(1, min(num_shards, len(episodes)))
    names = [f"episodes-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    for shard, name in enumerate(names):
        final = folder / name
        with atomic_file(final) as tmp, writing("an episode shard", final), \
                tf.io.TFRecordWriter(str(tmp)) as writer:
            for episode in episodes[shard::num_shards]:
                writer.write(episode_to_example(episode).SerializeToString())
    write_manifest(folder, names, episodes[0].widths,
                   len(episodes), int(sum(e.num_clips for e in episodes)), int(sum(e.num_texts for e in episodes)),
                   extra_manifest)
    return folder


def write_manifest(folder, shards: list, widths: tuple, num_episodes: int, num_clips: int, num_texts: int,
                   extra: dict | None = None) -> None:
    """manifest.json of an episode folder, written after its shards (a reader needs both)."""
    write_json_atomic(pathlib.Path(folder) / MANIFEST, {
        "format": "tfalign.episodes.v1", "clip_dim": int(widths[0]), "text_dim": int(widths[1]),
        "num_episodes": int(num_episodes), "num_clips": int(num_clips), "num_texts": int(num_texts),
        "shards": list(shards), **(extra or {}),
    })


def read_manifest(folder) -> dict:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise EpisodeError(f"{folder}: no such episode folder")
    path = folder / MANIFEST
    if not path.exists():
        raise EpisodeError(f"{folder}: no {MANIFEST}: not a finished episode folder (was its writing interrupted?)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EpisodeError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise EpisodeError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    for key in ("clip_dim", "text_dim", "shards"):
        if key not in manifest:
            raise EpisodeError(f"{path}: field {key!r} is missing")
    for key in ("clip_dim", "text_dim"):
        if not isinstance(manifest[key], int) or isinstance(manifest[key], bool) or manifest[key] < 1:
            raise EpisodeError(f"{path}: field {key!r}: expected an integer >= 1, got {manifest[key]!r}")
    shards = manifest["shards"]
    if not isinstance(shards, list) or not shards or not all(isinstance(s, str) and "/" not in s for s in shards):
        raise EpisodeError(f"{path}: field 'shards': expected a non-empty list of file names, got {shards!r}")
    # Shards on disk that the manifest does not list: a leftover, or a manifest of another write.
    listed = set(shards)
    unlisted = sorted(p.name for p in folder.glob("*.tfrecord") if p.name not in listed)
    if unlisted:
        raise EpisodeError(f"{folder}: shard {unlisted[0]} is not listed in {MANIFEST} "
                           f"({len(unlisted)} unlisted): the folder and its manifest disagree")
    return manifest


def read_tfrecords(folder, labelled: bool = True) -> list[Episode]:
    """The episodes of a folder ``write_tfrecords`` wrote; ``labelled=False``: the videos
    and narrations alone (any labels the records hold are not read)."""
    import tensorflow as tf

    folder = pathlib.Path(folder)
    manifest = read_manifest(folder)
    episodes = []
    for name in manifest["shards"]:
        path = folder / name
        if not path.is_file():
            raise EpisodeError(f"{folder}: shard {name} listed in {MANIFEST} is missing")
        read = 0
        try:
            for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
                episodes.append(example_to_episode(record, where=f"{path} record {read}", labelled=labelled))
                read += 1
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
            # TensorFlow's message is its graph's; the reader needs the file and the record.
            raise EpisodeError(f"{path}: record {read} (counting from 0) is damaged: a corrupted or truncated "
                               f"TFRecord file; the {read} record(s) before it are whole") from None
    expected = manifest.get("num_episodes")
    if expected is not None and expected != len(episodes):
        raise EpisodeError(f"{folder / MANIFEST}: field 'num_episodes' is {expected}, but the shards hold "
                           f"{len(episodes)} episodes")
    if not episodes:
        raise EpisodeError(f"{folder}: the shards hold no episode")
    return validate_episodes(episodes, clip_dim=manifest["clip_dim"], text_dim=manifest["text_dim"])


def tf_record_iterator(path):
    """The serialized records of one TFRecord file."""
    import tensorflow as tf

    return tf.data.TFRecordDataset(str(path)).as_numpy_iterator()


def write_npz(episodes, path) -> pathlib.Path:
    """All episodes in one .npz (keys ``{i}/{field}`` and ``video_ids``)."""
    episodes = validate_episodes(episodes)
    path = pathlib.Path(path)
    arrays = {"video_ids": np.asarray([e.video_id for e in episodes])}
    for i, e in enumerate(episodes):
        for name in _fields_of(e):
            arrays[f"{i}/{name}"] = getattr(e, name)
    with atomic_file(path) as tmp, writing("the episode file", path), open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def load_npz(path, what: str = "episode .npz") -> dict:
    """Every array of an .npz, read now: a missing, truncated or corrupt file (a
    zip error may only show when an array is read) is one EpisodeError naming it."""
    import zipfile
    import zlib

    path = pathlib.Path(path)
    if not path.is_file():
        raise EpisodeError(f"{path}: no such {what} file")
    with open(path, "rb") as file:
        magic = file.read(6)
    # an .npz is a zip archive (a .npy is refused below); NumPy would try to unpickle anything else
    if not magic.startswith((b"PK", b"\x93NUMPY")):
        raise EpisodeError(f"{path}: not a readable {what}: not a zip archive of arrays (what write_npz writes), "
                           f"it starts with {magic[:4]!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise EpisodeError(f"{path}: a .npy array, not an {what}")
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        if isinstance(error, EpisodeError):
            raise
        raise EpisodeError(f"{path}: not a readable {what} ({type(error).__name__}: "
                           f"{first_line(error, 'truncated')})") from None


def read_npz(path, labelled: bool = True) -> list[Episode]:
    """The episodes of a file ``write_npz`` wrote; ``labelled=False``: the videos and
    narrations alone (any labels the file holds are not read)."""
    return _episodes_of_npz(path, load_npz(path), labelled)


def _episodes_of_npz(path, data: dict, labelled: bool = True) -> list[Episode]:
    if "video_ids" in data and data["video_ids"].ndim != 1:
        raise EpisodeError(f"{path}: field 'video_ids': expected a list of names, got shape "
                           f"{list(data['video_ids'].shape)}")
    fields = _MATRIX_FIELDS + ("clip_to_text",) if labelled else _UNLABELLED_FIELDS
    names = ["video_ids"] + [f"{i}/{n}" for i in range(len(data["video_ids"]) if "video_ids" in data else 0)
                             for n in fields]
    missing = [name for name in names if name not in data]
    if missing:
        raise EpisodeError(f"{path}: field {missing[0]!r} is missing")
    episodes = [Episode(video_id=v, **{n: data[f"{i}/{n}"] for n in fields}) for i, v in enumerate(data["video_ids"])]
    return validate_episodes(episodes)


