"""Clips per second from a video file to clip features: shot detection, frame
decoding alone, and decode + encode through keras.applications backbones.

Writes one generated video (solid-colour and striped scenes of 1-6 s with hard
cuts, nothing downloaded), then times on it:
- ``cut``: PySceneDetect's content detector over the whole video (frames/s);
- ``decode``: PyAV seeking to each shot's centre frame(s), resized, no model;
- ``encode``: decode + the backbone (random weights: the time does not depend
  on them) for each ``--image-model`` at ``--image-size``, batches of 32.
Run from the repository root:

    python benchmarks/media_throughput.py --json benchmarks/results/media_throughput.json

A video of ``--minutes`` at ``--fps`` and ``--width`` x ``--height``; a film
is this times its length (decoding cost grows with pixels, encoding with clips).
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, peak_memory_mb, write  # noqa: E402

import numpy as np  # noqa: E402


def make_video(path, minutes: float, fps: int, size: tuple, seed: int = 0):
    from tfalign.media.samples import PALETTE, Scene, write_scene_video

    rng = np.random.default_rng(seed)
    scenes, total = [], 0.0
    while total < minutes * 60:
        scene = Scene(PALETTE[int(rng.integers(len(PALETTE)))], float(rng.uniform(1, 6)), bool(rng.integers(2)))
        scenes.append(scene)
        total += scene.seconds
    return write_scene_video(path, scenes, fps=fps, size=size), len(scenes)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the generated video")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--image-model", default="mobilenet_v3_small,resnet50",
                        help="comma-separated keras.applications backbones (tfalign's names)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--frames-per-clip", default="1,4", help="comma-separated frames averaged a clip")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    from tfalign.media.clips import ClipOptions, cut_video
    from tfalign.media.extractors import ImageEncoder, encode_clips
    from tfalign.media.extractors import clip_sample_times
    from tfalign.media.video import probe, read_frames

    with tempfile.TemporaryDirectory() as tmp:
        video, scenes = make_video(os.path.join(tmp, "film.mp4"), args.minutes, args.fps, (args.width, args.height))
        info = probe(video)
        frames = int(round(info.duration * info.fps))
        clips, seconds = timed(lambda: cut_video(video, ClipOptions()))
        result = {"video": {"seconds": round(info.duration, 1), "fps": args.fps, "width": args.width,
                            "height": args.height, "frames": frames, "scenes": scenes, "clips": len(clips)},
                  "cut": {"seconds": round(seconds, 2), "frames_per_s": round(frames / seconds, 1)},
                  "decode": [], "encode": []}
        print(f"{info.duration:.0f} s video, {frames} frames, {scenes} scenes -> {len(clips)} clips; "
              f"cut in {seconds:.1f} s ({frames / seconds:.0f} frames/s)")
        for k in [int(v) for v in args.frames_per_clip.split(",")]:
            times = clip_sample_times(clips, k)
            _, seconds = timed(lambda: sum(1 for _ in read_frames(video, times, args.image_size)))
            result["decode"].append({"frames_per_clip": k, "seconds": round(seconds, 2),
                                     "clips_per_s": round(len(clips) / seconds, 1)})
            print(f"decode, {k} frame(s) a clip: {len(clips) / seconds:.1f} clips/s")
        result["peak_memory_mb_before_encoders"] = round(peak_memory_mb(), 1)  # the media side: TF imported, no model
        for model in args.image_model.split(","):
            encoder = ImageEncoder(model, weights=None, image_size=args.image_size)
            encoder(np.zeros((2, args.image_size, args.image_size, 3), np.float32))  # build and trace once
            for k in [int(v) for v in args.frames_per_clip.split(",")]:
                features, seconds = timed(lambda: encode_clips(video, clips, encoder, frames_per_clip=k))
                assert features.shape[0] == len(clips)
                result["encode"].append({"image_model": model, "image_size": args.image_size, "frames_per_clip": k,
                                         "width": int(features.shape[1]), "seconds": round(seconds, 2),
                                         "clips_per_s": round(len(clips) / seconds, 1)})
                print(f"decode + {model} at {args.image_size}, {k} frame(s) a clip: "
                      f"{len(clips) / seconds:.1f} clips/s")
        result["peak_memory_mb"] = round(peak_memory_mb(), 1)  # eager backbones at batch 32 set it
        result["machine"] = machine()
    if args.json:
        write(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
