"""A small end-to-end media example, made here: nothing is downloaded.

    python scripts/media_demo.py --out demo/

writes into demo/:
- encoders/: a toy vision-language pair saved as two SavedModel folders
  (tfalign.media.samples.colour_encoders: a frame's feature is the share of
  its pixels of each palette colour, a text's counts the colour names it says:
  one space, as a real vision-language encoder's; real use names real
  encoders: --image-hub, --text-preset, ...);
- videos/: --videos generated videos of solid-colour scenes with hard cuts,
  each with its .srt (one cue for each run of scenes, naming their colours;
  the scenes no cue covers are black);
- run/ and saved_model/: the recipe trained on them (through
  tfalign.media.inputs and tfalign.train: the Beam route is
  pipelines.videos -> features -> prepare) and exported with the encoders in
  its assets/feature_extractors.json;
- movie.mp4 and movie.srt: one more video, for
  python -m tfalign.align --model demo/saved_model --video demo/movie.mp4 --narration demo/movie.srt ...

The clips and cues carry the same thing, so the model aligns them right
(validation clip accuracy 1.000 with --videos 10 --epochs 5, in under a
minute on 2 cores) and the retimed movie.srt comes back with its own times.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np


def episode_of(video: pathlib.Path, extractors):
    """The video's clips (shots) and cues as a labelled tfalign.Episode."""
    import tfalign
    from tfalign.media.episodes import cue_assignment
    from tfalign.media.inputs import media_inputs

    inputs = media_inputs(video, video.with_suffix(".srt"), extractors, show_progress=False)
    return tfalign.Episode(video_id=video.stem, clip_features=inputs.clip_features,
                           text_features=inputs.text_features, clip_times=inputs.clip_times,
                           clip_to_text=cue_assignment(inputs.clip_times, inputs.cues))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the folder to write into")
    parser.add_argument("--videos", type=int, default=10, help="training and validation videos to generate")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    args = parser.parse_args(argv)
    import tfalign
    from tfalign.media.samples import colour_encoders, sample_video

    out = pathlib.Path(args.out)
    rng = np.random.default_rng(0)
    extractors = colour_encoders(out / "encoders")
    (out / "videos").mkdir(parents=True, exist_ok=True)
    videos = [sample_video(out / "videos" / f"video{i:02d}.mp4", rng)[0] for i in range(args.videos)]
    sample_video(out / "movie.mp4", rng)
    episodes = [episode_of(v, extractors) for v in videos]
    split = max(1, len(episodes) // 5)
    run = tfalign.train("tfalign_rp_sbn", train=episodes[split:], val=episodes[:split], output_dir=out / "run",
                        epochs=args.epochs, batch_size=4, log=lambda *_: None)
    aligner = run.aligner
    aligner.feature_extractors = extractors  # what tfalign.align --video encodes with
    aligner.export(out / "saved_model")
    print(f"wrote {out}/movie.mp4, {out}/movie.srt and {out}/saved_model (validation clip accuracy "
          f"{run.metrics['best_clip_accuracy']['val']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
