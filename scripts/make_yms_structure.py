"""Writes tfalign/data/yms_structure.json.gz from the public YMS annotations.

The file holds, per used video, its split, clip times, matched phrase spans,
clip-to-phrase assignment and unmatched spans: the structure of the dataset,
no texts. Run from the repository root:

    python scripts/make_yms_structure.py --annotations ../shared/data/yms
"""

import argparse
import sys

from tfalign.data import yms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", default=None, help="folder of the YMS annotation files")
    parser.add_argument("--out", default=str(yms.EMBEDDED_STRUCTURE))
    args = parser.parse_args(argv)
    folder = args.annotations or yms.default_annotation_dir()
    if folder is None:
        sys.exit("error: --annotations: no YMS annotation folder found")
    structure = yms.parse_yms(folder)
    yms.write_structure(structure, args.out)
    clips = sum(len(v["clip_times"]) for v in structure["videos"])
    texts = sum(len(v["text_spans"]) for v in structure["videos"])
    print(f"wrote {args.out}: {len(structure['videos'])} videos, {clips} clips, {texts} matched phrases")


if __name__ == "__main__":
    main()
