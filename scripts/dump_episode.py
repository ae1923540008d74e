"""Writes one episode's inputs for ``python -m tfalign.align``: clips.npy,
texts.npy, times.csv, texts.txt (placeholder labels; YMS texts are not shipped)
and truth.csv (the true text index of each clip, -1 unmatched: --ground-truth).

    python scripts/dump_episode.py --dataset yms-synthetic --split test --index 0 --out examples/0002
"""

import argparse
import pathlib

import numpy as np

from tfalign.data.datasets import DataConfig, load_episodes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="yms-synthetic")
    parser.add_argument("--features", default="rp")
    parser.add_argument("--split", default="test")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    episode = load_episodes(DataConfig(dataset=args.dataset, features=args.features), args.split)[args.index]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "clips.npy", episode.clip_features)
    np.save(out / "texts.npy", episode.text_features)
    np.savetxt(out / "times.csv", episode.clip_times, delimiter=",", fmt="%.3f")
    np.savetxt(out / "truth.csv", episode.clip_to_text, fmt="%d")
    (out / "texts.txt").write_text("\n".join(f"{episode.video_id} phrase {j}" for j in range(episode.num_texts)) + "\n")
    print(f"wrote {out}: video {episode.video_id}, {episode.num_clips} clips, {episode.num_texts} texts")


if __name__ == "__main__":
    main()
