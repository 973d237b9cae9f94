"""Check the registry archive that `comfy node pack` wrote (what `comfy node publish` uploads).

    python .ci/check_archive.py node.zip

Fails (exit 1, one line per problem) unless: the archive is at most 45 MB; it holds every git-tracked
file of the pack (the PACK_FILES and PACK_DIRS below) and nothing else but the docs' text; the
bundled model in it is byte-identical to the tracked one; and `gendr_pix`, imported from the unpacked
archive, loads that model and upscales a small image to finite values. What is left out is decided
by .comfyignore.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

MAX_BYTES = 45_000_000  # 45 MB; the bundled model alone is about 37 MB
MODEL = "gendr_pix/weights/gendr-pix-small-x4.safetensors"
PACK_FILES = {"__init__.py", "pyproject.toml", "README.md", "LICENSE", "requirements.txt"}
PACK_DIRS = ("nodes/", "web/", "gendr_pix/", "example_workflows/")
# Besides the pack, only the docs' text may go in (README links to it); never their data or pictures.
DOC_TEXT = ".md"

IMPORT_CHECK = """
import sys, torch, gendr_pix
root = sys.argv[1]
assert gendr_pix.__file__.startswith(root), f"imported gendr_pix from {gendr_pix.__file__}, not the archive"
model = gendr_pix.load_default_model()
out = gendr_pix.upscale(model, torch.rand(1, 3, 16, 16), gendr_pix.UpscaleOptions(scale=4))
assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all(), "the bundled model's output is not finite"
print("archive's gendr_pix loads the bundled model:", gendr_pix.__file__)
"""


def in_pack(name: str) -> bool:
    return name in PACK_FILES or name.startswith(PACK_DIRS)


def allowed(name: str) -> bool:
    path = PurePosixPath(name)
    is_doc_text = path.parts[0] == "docs" and len(path.parts) == 2 and path.suffix == DOC_TEXT
    return in_pack(name) or is_doc_text


def problems(names: list[str], size: int, tracked: list[str]) -> list[str]:
    """What is wrong with an archive of `size` bytes holding `names`, given the repo's tracked files."""
    out = []
    if size > MAX_BYTES:
        out.append(f"archive is {size / 1e6:.1f} MB, more than {MAX_BYTES / 1e6:.0f} MB")
    present = set(names)
    missing = sorted(n for n in tracked if in_pack(n) and n not in present)
    if MODEL not in present and MODEL not in missing:
        missing.insert(0, MODEL)
    out += [f"missing from the archive: {n}" for n in missing]
    out += [f"should not be in the archive: {n} (add it to .comfyignore, or to PACK_FILES / PACK_DIRS here)"
            for n in sorted(present) if not n.endswith("/") and not allowed(n)]
    return out


def model_problems(archive: zipfile.ZipFile, repo: Path) -> list[str]:
    if MODEL not in archive.namelist():
        return []  # already reported as missing
    packed = hashlib.sha256(archive.read(MODEL)).hexdigest()
    tracked = hashlib.sha256((repo / MODEL).read_bytes()).hexdigest()
    if packed != tracked:
        return [f"{MODEL} in the archive differs from the tracked file (sha256 {packed[:12]} vs {tracked[:12]})"]
    return []


def import_problems(archive: zipfile.ZipFile) -> list[str]:
    """Import gendr_pix from the unpacked archive (not the checkout) and run the bundled model once."""
    with tempfile.TemporaryDirectory() as tmp:
        archive.extractall(tmp)
        root = os.path.realpath(tmp)
        env = {**os.environ, "PYTHONPATH": root}
        done = subprocess.run([sys.executable, "-c", IMPORT_CHECK, root], cwd=root, env=env,
                              capture_output=True, text=True)
    if done.returncode:
        return ["gendr_pix from the archive does not work: " + (done.stderr.strip().splitlines() or ["?"])[-1]]
    print(done.stdout.strip())
    return []


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archive", type=Path, nargs="?", default=Path("node.zip"))
    p.add_argument("--repo", type=Path, default=Path("."), help="the checkout the archive was packed from")
    args = p.parse_args()
    tracked = subprocess.run(["git", "-C", str(args.repo), "ls-files"], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    with zipfile.ZipFile(args.archive) as archive:
        names = archive.namelist()
        found = problems(names, args.archive.stat().st_size, tracked)
        found += model_problems(archive, args.repo)
        if not found:
            found += import_problems(archive)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    tops = sorted({n.split("/")[0] for n in names})
    print(f"{args.archive}: {args.archive.stat().st_size / 1e6:.2f} MB, {len(names)} files ({', '.join(tops)})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
