"""`fetch-data`: the training photos, from Debian wallpaper packages, with a fixed train/val split.

How it works (reproducible on any machine that reaches a Debian mirror, no root install):
1. `apt-get download` the packages into `<data>/debs`, then `dpkg -x` each into `<data>/extracted`.
2. Keep the genuine photographs only. The packages mix photos with abstract/vector art (Breeze
   polygons, MATE stripes, Ubuntu gradients); which is which was decided once by looking at every
   image, and is recorded here as lists of names. A wallpaper that ships several sizes contributes its
   largest file only.
3. Split of `PHOTOS` (plasma-workspace-wallpapers, mate-backgrounds): each name is hashed (sha256 of
   the UTF-8 name); the `VAL_COUNT` names with the smallest hashes form the validation set, the rest
   train. Independent of file order, machine and package version.
4. `EXTRA_TRAIN` (the photos of lomiri-wallpapers-16.04/-20.04, added for phase 4 of the default
   model) are training-only, in their own folder, so the validation set stays the same five photos for
   every model version and the configs of earlier phases still see exactly their data.
5. `PANEL` (photos from two other sources, never trained on by any phase: scikit-image's sample data
   in python3-skimage and OpenCV's sample data in opencv-doc) go to `panel/`: the held-out photos of
   the artifact metrics and the visual panel (`python -m gendr_pix panel`), chosen for what users
   upscale and a small model gets wrong: a face, fine machinery, fur, foliage, text, flat sky and walls.
The result is `<data>/photos/{train,val,train-extra,panel}/<name>.<ext>` plus `<data>/photos/split.json`
(names, source paths, sizes, sha256 of each file). Licences: plasma/mate GPL-2+; lomiri photos
CC-BY-4.0, CC-BY-SA-3.0/4.0 or CC0 per file (see the copyright files in the packages); scikit-image's
photos public domain or CC0 (astronaut: NASA; rocket: SpaceX; chelsea, coffee: CC0; motorcycle_left:
the Middlebury stereo data set, as scikit-image ships it); OpenCV's samples under opencv-doc's copyright
file (Debian removed the ones it could not redistribute).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds")
# Photographs, by wallpaper name (plasma: folder under usr/share/wallpapers; mate: file stem under
# usr/share/backgrounds/mate/nature). Left out as not photographs: plasma Altai, Autumn (painting),
# Canopee, Cascade, Cluster, Elarun, Flow, FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay,
# Opal, PastelHills, Patak, SafeLanding, Shell, Volna; all of mate/abstract and mate/desktop.
PLASMA_PHOTOS = (
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
    "OneStandsOut", "Path", "summer_1am",
)
MATE_PHOTOS = (
    "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
    "TwoWings", "Wood", "YellowFlower",
)
PHOTOS = PLASMA_PHOTOS + MATE_PHOTOS
# Photographs of lomiri-wallpapers-16.04/-20.04 (file stems under usr/share/backgrounds). Left out as
# not photographs: lomiri-default-background, warty-final-ubuntu, umang, Fossa, Infinite-Sea,
# Painting-Colors.
EXTRA_PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
EXTRA_TRAIN = (
    "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Kleiber_by_Lukas_Baubkus", "Picture_0B_by_freespace",
    "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
    "analogpattern_by_Peter_Nerlich", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
    "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
)
# Held-out panel photos: name -> path inside the extracted packages.
PANEL_PACKAGES = ("python3-skimage", "opencv-doc")
_SKIMAGE = "usr/lib/python3/dist-packages/skimage/data"
_OPENCV = "usr/share/doc/opencv-doc/examples"
PANEL = {
    "astronaut": f"{_SKIMAGE}/astronaut.png",            # face, flat wall
    "motorcycle_left": f"{_SKIMAGE}/motorcycle_left.png",  # fine machinery, a badge
    "chelsea": f"{_SKIMAGE}/chelsea.png",                # fur
    "coffee": f"{_SKIMAGE}/coffee.png",
    "rocket": f"{_SKIMAGE}/rocket.jpg",                  # night sky, thin structures
    "plant": f"{_OPENCV}/alphamat/input_images/plant.jpg",  # foliage
    "baboon": f"{_OPENCV}/data/baboon.jpg",              # fur, a face
    "building": f"{_OPENCV}/data/building.jpg",          # regular detail, sky, wall
    "scenetext01": f"{_OPENCV}/text/scenetext01.jpg",    # text, foliage
    "squirrel": f"{_OPENCV}/data/squirrel_cls.jpg",      # fur, leaves
}
VAL_COUNT = 5
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def split_names(names: list[str] | tuple[str, ...], val_count: int = VAL_COUNT) -> tuple[list[str], list[str]]:
    """(train, val): the val_count names with the smallest sha256 go to validation."""
    ranked = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return sorted(ranked[val_count:]), sorted(ranked[:val_count])


def download_packages(data: Path) -> Path:
    debs, extracted = data / "debs", data / "extracted"
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES + EXTRA_PACKAGES + PANEL_PACKAGES:
        if not any(debs.glob(f"{pkg}_*.deb")):
            log.info("apt-get download %s", pkg)
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        done = extracted / ".done" / deb.name
        if not done.exists():  # per package, so a data folder from before EXTRA_PACKAGES catches up
            log.info("dpkg -x %s", deb.name)
            subprocess.run(["dpkg", "-x", str(deb), str(extracted)], check=True)
            done.parent.mkdir(parents=True, exist_ok=True)
            done.touch()
    return extracted


def find_sources(extracted: Path) -> dict[str, Path]:
    """Name -> largest image file, for every name in PHOTOS and EXTRA_TRAIN. Raises FileNotFoundError
    if one is missing."""
    wanted = set(PHOTOS) | set(EXTRA_TRAIN)
    found: dict[str, tuple[int, Path]] = {}
    candidates = [p for p in (extracted / "usr/share/wallpapers").glob("*/contents/images/*")]
    candidates += list((extracted / "usr/share/backgrounds/mate/nature").glob("*"))
    candidates += list((extracted / "usr/share/backgrounds").glob("*"))
    for path in candidates:
        if path.suffix.lower() not in IMAGE_EXTS:
            continue
        name = path.parts[-4] if "wallpapers" in path.parts else path.stem
        if name not in wanted:
            continue
        with Image.open(path) as im:
            area = im.size[0] * im.size[1]
        if name not in found or area > found[name][0]:
            found[name] = (area, path)
    missing = sorted(wanted - set(found))
    if missing:
        raise FileNotFoundError(f"{extracted}: photos not found in the packages: {', '.join(missing)}")
    return {n: p for n, (_, p) in found.items()}


def fetch_photos(data: Path) -> Path:
    """Download, extract, select and split. Returns `<data>/photos`. Safe to run again."""
    extracted = download_packages(data)
    sources = find_sources(extracted)
    train, val = split_names(PHOTOS)
    sources.update({name: extracted / rel for name, rel in PANEL.items()})
    missing = sorted(n for n in PANEL if not sources[n].is_file())
    if missing:
        raise FileNotFoundError(f"{extracted}: panel photos not found in {', '.join(PANEL_PACKAGES)}: "
                                f"{', '.join(missing)}")
    out = data / "photos"
    record = {"packages": list(PACKAGES + EXTRA_PACKAGES + PANEL_PACKAGES),
              "rule": f"val = the {VAL_COUNT} names of PHOTOS with the smallest sha256(name); "
                      f"train-extra = the photos of {', '.join(EXTRA_PACKAGES)}, training only; "
                      f"panel = held-out photos of {', '.join(PANEL_PACKAGES)}, never trained on",
              "train": {}, "val": {}, "train-extra": {}, "panel": {}}
    for split, names in (("train", train), ("val", val), ("train-extra", sorted(EXTRA_TRAIN)),
                         ("panel", sorted(PANEL))):
        (out / split).mkdir(parents=True, exist_ok=True)
        for name in names:
            src = sources[name]
            dst = out / split / f"{name}{src.suffix.lower()}"
            shutil.copyfile(src, dst)
            with Image.open(dst) as im:
                size = im.size
            record[split][name] = {"source": str(src.relative_to(data)), "size": list(size),
                                   "sha256": hashlib.sha256(dst.read_bytes()).hexdigest()}
    (out / "split.json").write_text(json.dumps(record, indent=1))
    log.info("%d train (+%d train-extra), %d val and %d panel photos in %s", len(train), len(EXTRA_TRAIN),
             len(val), len(PANEL), out)
    return out
