"""Named datasets: where episodes come from.

| name | what |
|---|---|
| ``yms-synthetic`` | the real YMS structure (embedded, no texts) with synthetic features; the default |
| ``yms`` | YMS parsed from the annotation files, features from ``feature_file`` or synthetic |
| ``synthetic`` | a pure generator with YMS-like length statistics |
| ``synthetic-lsmdc`` | one-to-one, no unmatched clips, about 20x larger: the LSMDC stand-in |
| ``tfrecord:DIR`` | a folder written by ``records.write_tfrecords`` (``DIR/{split}/`` if present) |
| ``npz:PATH`` | a file written by ``records.write_npz`` (``PATH`` may hold ``{split}``) |
| ``memory`` | episodes given from Python (``tfalign.train(..., train=[...], val=[...])``): recorded, not loadable |

Features of the generated datasets: ``full`` (2048 video / 768 text), ``rp``
(300/300: the full features through the seeded Achlioptas projection),
``lxmert`` (768/768), ``joint`` (512/512 in one space, as a vision-language
encoder gives them: data/joint_space.py). Episodes of records, of a feature file or from Python
may have any widths: the model takes the widths of its data.

A YMS feature file is an .npz with arrays ``{video_id}/clip_features``
[T_v, D_v] and ``{video_id}/text_features`` [T_s, D_s], in the order of the
structure's clips and matched phrases.
"""

from __future__ import annotations

import dataclasses
import pathlib
import typing

import numpy as np


from tfalign.data import records, yms
from tfalign.data.features import FEATURE_WIDTHS, feature_widths
from tfalign.data.episode import Episode, EpisodeError, validate_episodes
from tfalign.data.joint_space import JointSpaceFeatureModel
from tfalign.data.projection import RandomProjection
from tfalign.data.synthetic import FeatureModel, generate_skeletons
from tfalign.errors import UserError
from tfalign.validation import check_fields, check_ranges

SPLIT_SIZES = {"train": 66, "val": 12, "test": 15}  # YMS's video counts
NAMES = ("yms-synthetic", "yms", "synthetic", "synthetic-lsmdc")
MEMORY = "memory"  # episodes given from Python: the name a run records for them


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "yms-synthetic"
    features: str = "rp"
    seed: int = 0
    difficulty: float = 0.5
    projection_seed: int = 0
    feature_file: str | None = None
    annotation_dir: str | None = None
    lsmdc_scale: float = 20.0  # size of synthetic-lsmdc relative to YMS training clips
    # Train on this many videos of the training split (a subset drawn with the data seed); None: all.
    # 0: none labelled (the recipe then learns from the unlabelled videos alone, from zero-shot DTW).
    train_videos: int | None = None
    # Give the run this many (or "all") of the training-split videos outside the train_videos subset
    # *without* their labels (a draw of its own with the data seed): videos with a narration nobody aligned.
    unlabelled_videos: int | typing.Literal["all"] | None = None
    # A user's own unlabelled pairs: an episode .npz or a TFRecord folder (their labels, if any, are not read).
    unlabelled_file: str | None = None

    @property
    def synthetic_features(self) -> bool:
        """Whether the features are generated (the embedded and synthetic datasets, YMS without a feature file)."""
        return self.dataset in ("yms-synthetic", "synthetic", "synthetic-lsmdc") or (
            self.dataset == "yms" and not self.feature_file)

    def __post_init__(self):
        check_fields(self, "data.")
        check_ranges(self, [("seed", 0, None, False, False), ("difficulty", 0, 1, False, False),
                            ("train_videos", 0, None, False, False),
                            ("projection_seed", 0, None, False, False), ("lsmdc_scale", 0, None, True, False)],
                     "data.")
        if self.features not in FEATURE_WIDTHS:
            raise UserError(f"data.features: expected one of {sorted(FEATURE_WIDTHS)}, got {self.features!r}")
        if self.unlabelled_videos != "all":
            check_ranges(self, [("unlabelled_videos", 1, None, False, False)], "data.")
        if self.unlabelled_videos is not None and self.train_videos is None:
            raise UserError("data.unlabelled_videos: needs data.train_videos (the unlabelled videos are the training "
                            "videos outside its subset)")
        kind, sep, location = self.dataset.partition(":")
        if not (self.dataset in (*NAMES, MEMORY) or (kind in ("tfrecord", "npz") and sep and location)):
            raise UserError(f"data.dataset: expected one of {list(NAMES)}, tfrecord:DIR or npz:PATH, "
                            f"got {self.dataset!r}")


def describe_data(data: DataConfig) -> str:
    """The data a stage reads, in words (for the console)."""
    text = f"{data.dataset} ({data.features} features"
    if data.synthetic_features:
        text += f", synthetic at difficulty {data.difficulty:g}, data seed {data.seed}"
    if data.train_videos == 0:
        text += "; no labelled training video"
    elif data.train_videos is not None:
        text += f"; training on {data.train_videos} of the training videos"
    if data.unlabelled_videos:
        text += f", {data.unlabelled_videos} {'of them' if data.train_videos == 0 else 'more'} without labels"
    if data.unlabelled_file:
        text += f"; unlabelled pairs from {data.unlabelled_file}"
    return text + ")"


def episode_widths(splits: dict, dataset: str, expected: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (clip, text) feature widths that the episodes of every split
    ({split: episodes}) share; with ``expected`` (a trained model's widths)
    they must be those."""
    found = None
    for split, episodes in splits.items():
        if not episodes:
            continue
        widths = episodes[0].widths
        reference = expected or found
        if reference is not None and widths != tuple(reference):
            what = "the model takes" if expected else "the episodes before them have"
            raise UserError(f"the {split} episodes of {dataset} have clip/text feature widths {widths[0]}/"
                            f"{widths[1]}, but {what} {reference[0]}/{reference[1]}")
        found = found or widths
    if found is None:
        raise UserError(f"{dataset}: no episodes")
    return found


def projections(config: DataConfig) -> tuple[RandomProjection, RandomProjection]:
    clip_in, text_in = FEATURE_WIDTHS["full"]
    out_clip, out_text = FEATURE_WIDTHS["rp"]
    return (RandomProjection(clip_in, out_clip, config.projection_seed),
            RandomProjection(text_in, out_text, config.projection_seed + 1))


class _Featurizer:
    """Synthetic features of the requested kind, projected when kind is ``rp``."""

    def __init__(self, config: DataConfig):
        if config.features == "joint":
            self.model, self.project = JointSpaceFeatureModel(FEATURE_WIDTHS["joint"][0], config.difficulty,
                                                              config.seed), False
            return
        base = "lxmert" if config.features == "lxmert" else "full"
        self.model = FeatureModel(*FEATURE_WIDTHS[base], difficulty=config.difficulty, seed=config.seed)
        self.project = config.features == "rp"
        if self.project:
            clip_p, text_p = projections(config)
            self.clip_matrix, self.text_matrix = clip_p.matrix, text_p.matrix

    def __call__(self, skeleton) -> Episode:
        episode = self.model.episode(skeleton)
        if self.project:
            episode = episode.replace(clip_features=episode.clip_features @ self.clip_matrix,
                                      text_features=episode.text_features @ self.text_matrix)
        return episode


def _skeletons(config: DataConfig, split: str) -> list[dict]:
    if config.dataset == "yms-synthetic":
        return [v for v in yms.load_structure()["videos"] if v["split"] == split]
    if config.dataset == "yms":
        folder = config.annotation_dir or yms.default_annotation_dir()
        if folder is None:
            raise FileNotFoundError("dataset 'yms': no annotation folder; set --annotation-dir or $TFALIGN_YMS_DIR")
        return [v for v in yms.parse_yms(folder)["videos"] if v["split"] == split]
    if config.dataset == "synthetic":
        return generate_skeletons(SPLIT_SIZES[split], seed=config.seed, split=split)
    if config.dataset == "synthetic-lsmdc":
        # YMS training has ~11,800 clips; one-to-one videos of ~64 pairs.
        videos = {"train": int(round(11800 * config.lsmdc_scale / 64))}.get(
            split, max(4, int(round(10 * config.lsmdc_scale))))
        return generate_skeletons(max(1, videos), seed=config.seed, one_to_one=True, split=split)
    raise UserError(f"unknown dataset {config.dataset!r}: expected one of {list(NAMES)}, tfrecord:DIR or npz:PATH")


def _from_feature_file(skeletons, path, config) -> list[Episode]:
    data = records.load_npz(path, "feature .npz")
    episodes = []
    for s in skeletons:
        vid = s["video_id"]
        for field in ("clip_features", "text_features"):
            if f"{vid}/{field}" not in data:
                raise EpisodeError(f"feature file {path}: episode {vid!r}: field {field!r} is missing")
        episodes.append(Episode(video_id=vid, clip_features=data[f"{vid}/clip_features"],
                                text_features=data[f"{vid}/text_features"], clip_times=s["clip_times"],
                                text_spans=s["text_spans"], clip_to_text=s["clip_to_text"],
                                unmatched_spans=s["unmatched_spans"]))
    return validate_episodes(episodes)  # any widths, the same for every video


def training_subset(episodes: list, config: DataConfig) -> list:
    """The ``config.train_videos`` training videos to train on: a subset drawn with
    the data seed (the same for the same seed), in the split's order; all without it."""
    count = config.train_videos
    if count is None:
        return episodes
    if count > len(episodes):
        raise UserError(f"data.train_videos: {count}, but the training split holds {len(episodes)} videos",
                        field="train_videos")
    chosen = np.random.default_rng([config.seed, 20231]).choice(len(episodes), count, replace=False)
    return [episodes[i] for i in sorted(chosen)]


def unlabelled_subset(episodes: list, config: DataConfig) -> list:
    """The ``config.unlabelled_videos`` training videos outside the ``train_videos``
    subset, drawn with the data seed (the same for the same seed), without their labels."""
    count = config.unlabelled_videos
    if count is None:
        return []
    chosen = {e.video_id for e in training_subset(episodes, config)}
    rest = [e for e in episodes if e.video_id not in chosen]
    if count == "all":
        count = len(rest)
    if count > len(rest):
        raise UserError(f"data.unlabelled_videos: {count}, but {len(rest)} training videos lie outside the "
                        f"{config.train_videos} labelled ones", field="unlabelled_videos")
    picked = np.random.default_rng([config.seed, 20232]).choice(len(rest), count, replace=False)
    return [rest[i].without_labels() for i in sorted(picked)]


def load_unlabelled(config: DataConfig) -> list[Episode]:
    """The run's unlabelled videos when its splits are the data config's (``unlabelled_videos``)."""
    return unlabelled_videos(config, _load_split(config, "train") if config.unlabelled_videos else [])


def unlabelled_videos(config: DataConfig, train_split: list, given=()) -> list[Episode]:
    """Every unlabelled video a run learns from, the one way they enter the data: ``given``
    (from Python), the ``unlabelled_videos`` of ``train_split`` outside the labelled draw and
    the pairs of ``unlabelled_file``; all without labels, whatever the files or episodes hold."""
    episodes = [e.without_labels() for e in given] + unlabelled_subset(train_split, config)
    if config.unlabelled_file:
        episodes += _unlabelled_file_episodes(pathlib.Path(config.unlabelled_file), config)
    return episodes


def _unlabelled_file_episodes(path: pathlib.Path, config: DataConfig) -> list[Episode]:
    """The videos of ``unlabelled_file`` without labels; a file that is not an episode
    file, or whose widths are not the data's, is one line naming it."""
    try:
        if path.suffix == ".npz":
            found = records.read_npz(path, labelled=False)
        elif path.is_dir():
            found = records.read_tfrecords(path, labelled=False)
        else:
            raise UserError(f"{path}: expected an episode .npz or a TFRecord folder")
    except UserError as error:
        raise UserError(f"data.unlabelled_file: {str(error).removeprefix('data.unlabelled_file: ')}",
                        field="unlabelled_file") from None
    if not config.feature_file and config.dataset.partition(":")[0] not in (MEMORY, "tfrecord", "npz"):
        check_unlabelled_widths(found, feature_widths(config.features), config,
                                f"the {config.dataset} {config.features} features")
    return [e.without_labels() for e in found]


def check_unlabelled_widths(unlabelled, widths, config: DataConfig, against: str = "the labelled episodes") -> None:
    """The one rule of the unlabelled videos' widths: those of the data they join (``widths``,
    ``against`` in words). The error names them as the user gave them: the file
    (``data.unlabelled_file``), the Python argument (``unlabelled``) or the draw
    (``unlabelled_videos``)."""
    if not unlabelled or unlabelled[0].widths == tuple(widths):
        return
    found, source = unlabelled[0].widths, config.unlabelled_file
    field = "unlabelled_file" if source else ("unlabelled" if config.dataset == MEMORY else "unlabelled_videos")
    where = f"data.unlabelled_file: {source}: its videos" if source else f"{field}: the unlabelled videos"
    raise UserError(f"{where} have clip/text feature widths {found[0]}/{found[1]}, but {against} have "
                    f"{widths[0]}/{widths[1]}", field=field)


def load_episodes(config: DataConfig, split: str) -> list[Episode]:
    """Whole videos of one split ("train", "val" or "test"), validated; the training
    split cut to ``config.train_videos`` videos when that is set."""
    episodes = _load_split(config, split)
    return training_subset(episodes, config) if split == "train" else episodes


def _load_split(config: DataConfig, split: str) -> list[Episode]:
    if split not in SPLIT_SIZES:
        raise UserError(f"split must be one of {list(SPLIT_SIZES)}, got {split!r}")
    if config.dataset == MEMORY:
        raise UserError("data.dataset: 'memory': this run was trained on episodes given from Python; pass the "
                        "episodes again (tfalign.evaluate(aligner, episodes)) or name a dataset")
    kind, _, location = config.dataset.partition(":")
    if kind in ("tfrecord", "npz") and location:
        path = pathlib.Path(location.replace("{split}", split))
        if kind == "tfrecord":
            return records.read_tfrecords(path / split if (path / split / records.MANIFEST).exists() else path)
        return records.read_npz(path)
    skeletons = _skeletons(config, split)
    if config.feature_file:
        return _from_feature_file(skeletons, config.feature_file, config)
    featurize = _Featurizer(config)
    return validate_episodes([featurize(s) for s in skeletons], *feature_widths(config.features))
