"""Writes one episode's inputs for ``python -m tfalign.align`` and for TF Serving:
clips.npy, texts.npy, times.csv, texts.txt (placeholder labels; YMS texts are
not shipped), truth.csv (the true text index of each clip, -1 unmatched:
--ground-truth) and request.json (a TF Serving REST :predict body for
serving_default, with the video's features as its one row).

    python scripts/dump_episode.py --split test --index 0 --out episode/
"""

import argparse
import json
import pathlib

import numpy as np

from tfalign.data.datasets import DataConfig, load_episodes


def rest_request(episode, signature="serving_default") -> dict:
    """TF Serving's columnar REST format: every input batched, here one row."""
    return {"signature_name": signature, "inputs": {
        "clip_features": [np.round(episode.clip_features, 6).tolist()],
        "text_features": [np.round(episode.text_features, 6).tolist()],
        "clip_lengths": [episode.num_clips], "text_lengths": [episode.num_texts]}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="yms-synthetic", help="dataset (default: yms-synthetic)")
    parser.add_argument("--features", default="rp", help="feature kind (default: rp)")
    parser.add_argument("--split", default="test", help="train, val or test (default: test)")
    parser.add_argument("--index", type=int, default=0, help="which video of the split (default: 0)")
    parser.add_argument("--out", required=True, help="folder to write the files into")
    args = parser.parse_args(argv)
    episode = load_episodes(DataConfig(dataset=args.dataset, features=args.features), args.split)[args.index]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "clips.npy", episode.clip_features)
    np.save(out / "texts.npy", episode.text_features)
    np.savetxt(out / "times.csv", episode.clip_times, delimiter=",", fmt="%.3f")
    np.savetxt(out / "truth.csv", episode.clip_to_text, fmt="%d")
    (out / "texts.txt").write_text("\n".join(f"{episode.video_id} phrase {j}" for j in range(episode.num_texts)) + "\n")
    (out / "request.json").write_text(json.dumps(rest_request(episode)))
    print(f"wrote {out}: video {episode.video_id}, {episode.num_clips} clips, {episode.num_texts} texts")


if __name__ == "__main__":
    main()
