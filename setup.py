"""tfalign: NeuMATCH multimodal sequence alignment, trained data-efficiently (TF 2 / Keras 3)."""

from setuptools import find_packages, setup

setup(
    name="tfalign",
    version="0.1.0",
    description="Align video clips with narration (NeuMATCH) and train it data-efficiently (Wang et al., WACV 2021)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfalign", "tfalign.*", "pipelines", "pipelines.*"]),
    package_data={"tfalign.data": ["yms_structure.json.gz"]},
    python_requires=">=3.10",
    # Ranges tested in CI: TF 2.21.0, Keras 3.15.1, NumPy 2.4.6, TensorBoard 2.21.0,
    # tensorflow-serving-api 2.21.0, matplotlib 3.11.2, apache-beam 2.77.0, keras-hub 0.32.0,
    # tensorflow-text 2.21.1, tensorflow-hub 0.16.1 (with tf-keras 2.21.0), protobuf 6.33.6, pytest 9.2,
    # pytest-xdist 3.8, pysubs2 1.8.1, charset-normalizer 3.5.3,
    # hypothesis 6.170, ruff 0.17.6.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "tensorboard>=2.21,<2.22",
        "numpy>=1.26,<3",
        # The feature-distribution images in TensorBoard and the compare command's plot.
        "matplotlib>=3.8,<4",
        # TF Serving's protos: every export writes warm-up PredictionLogs (serving/warmup.py);
        # the gRPC client (tfalign.serving.client) uses them too.
        "tensorflow-serving-api>=2.21,<2.22",
    ],
    extras_require={
        # Kept for older install lines: tensorflow-serving-api is now a core dependency.
        "serving": [],
        # Beam pipelines (pipelines/): Beam 2.77 needs protobuf < 7, which TF 2.21 accepts (>= 6.31.1).
        # tensorflow-hub: --image-hub / --text-hub (TF-Hub SavedModels from a local folder).
        "pipelines": ["apache-beam[tfrecord]>=2.77,<2.78", "keras-hub>=0.32,<0.33", "tensorflow-text>=2.21,<2.22",
                      "pillow>=10", "tensorflow-hub>=0.16,<0.17"],
        # Media in, subtitles out (tfalign.media, pipelines.videos, tfalign.align --video): PyAV decodes
        # (FFmpeg is inside its wheels), PySceneDetect finds shots, srt / webvtt-py / pysbd read narrations.
        # pysubs2 reads .ass/.ssa; charset-normalizer detects a narration's encoding.
        "media": ["av>=18,<19", "scenedetect>=0.7,<0.8", "srt>=3.5,<4", "webvtt-py>=0.6,<0.7", "pysbd>=0.3.4,<0.4",
                  "pysubs2>=1.7,<2", "charset-normalizer>=3.3,<4",
                  "keras-hub>=0.32,<0.33", "tensorflow-text>=2.21,<2.22", "pillow>=10"],
        # pytest-xdist: the suite runs on two workers (-n 2), a file to a worker (--dist loadfile).
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "hypothesis>=6.100,<7", "ruff>=0.6,<1",
                 "tensorflow-serving-api>=2.21,<2.22",
                 "apache-beam[tfrecord]>=2.77,<2.78", "keras-hub>=0.32,<0.33", "tensorflow-text>=2.21,<2.22",
                 "pillow>=10", "tensorflow-hub>=0.16,<0.17",
                 "av>=18,<19", "scenedetect>=0.7,<0.8", "srt>=3.5,<4", "webvtt-py>=0.6,<0.7", "pysbd>=0.3.4,<0.4",
                 "pysubs2>=1.7,<2", "charset-normalizer>=3.3,<4"],
    },
    entry_points={
        "console_scripts": [
            # Through tfalign.cli.run, as python -m: one-line errors, exit codes.
            "tfalign-train=tfalign.cli:train_script",
            "tfalign-compare=tfalign.cli:compare_script",
            "tfalign-evaluate=tfalign.cli:evaluate_script",
            "tfalign-export=tfalign.cli:export_script",
            "tfalign-align=tfalign.cli:align_script",
        ]
    },
)
