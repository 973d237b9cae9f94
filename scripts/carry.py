"""Carry a training run to an offline GPU machine whose uploads and downloads are capped in size.

Why: such a machine (no network; files travel with each call, e.g. at most 64 MiB up per call with
the repository included, and files of at most 16 MiB back) cannot fetch the perceptual weights and
cannot take them in one call: the repository alone is about 39 MiB (the bundled model is 37 MiB) and
`perceptual.safetensors` is 66 MiB in float32. So:

  pack    (here)  writes the perceptual weights as float16 shards into `.carry/call<N>/`, sized so
                  that every call's upload fits the budget, the last call with the photos as well,
                  and prints which call carries what. Float16 moves LPIPS/DISTS by under 0.3 % and
                  keeps more precision than bf16 autocast, which casts these weights to bfloat16
                  anyway; tensors under 64 KiB (heads, DISTS alpha/beta) stay float32.
  stash   (there) copies one call's shard folder to /tmp/gendr-pix-carry, where the next call on
                  the same (still warm) machine finds it.
  unpack  (there) joins all shards into a float32 `perceptual.safetensors` in a cache folder, or
                  names the shards that are missing.
  pieces  (there) writes a run's EMA model as float16 (as shipped) in pieces under the size cap,
                  with a sha256 file.
  join    (here)  puts the pieces back together and checks the sha256.

A stash lives only as long as the machine: where it is given back soon after a call (ours: about
30 s idle), make the next call at once. If it went back in between, `unpack` names the missing call
and carry_train.sh stops before spending any time on training.

    python scripts/carry.py pack --budget-mib 64 --data data/photos/train
    python3 scripts/carry.py stash .carry/call1                                # call 1, there
    bash scripts/carry_train.sh CONFIG.toml 7                                   # last call, there
    python scripts/carry.py join RUN_DIR/model_ema.safetensors RETURNED_PIECES...   # here
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # gendr_pix, when run as `python scripts/carry.py` from anywhere
STASH = Path(os.environ.get("GENDR_PIX_CARRY_STASH", "/tmp/gendr-pix-carry"))
MANIFEST = "manifest.json"
SMALL_BYTES = 64 * 1024  # tensors below this stay float32: exact, and they cost nothing
MIB = 2**20


def folder_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def travelling_bytes(repo: Path = REPO) -> int:
    """What every call uploads anyway: tracked files and untracked files git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           check=True, capture_output=True).stdout.split(b"\0")
    return sum((repo / n.decode()).stat().st_size for n in names if n and (repo / n.decode()).is_file())


def plan_calls(sizes: dict[str, int], room: int, last_room: int) -> list[list[str]]:
    """Tensor names per call (first-fit decreasing), the last call filled first since it travels anyway.
    `room` is each call's free upload, `last_room` the last call's after the photos."""
    if last_room < 0:
        raise ValueError(f"the photos alone overflow the last call by {-last_room / MIB:.1f} MiB")
    calls: list[list[str]] = [[]]  # calls[0] is the last call
    free = [last_room]
    for name in sorted(sizes, key=sizes.get, reverse=True):
        if sizes[name] > room:
            raise ValueError(f"tensor {name} ({sizes[name] / MIB:.1f} MiB) does not fit one call's "
                             f"{room / MIB:.1f} MiB of free upload")
        k = next((i for i, f in enumerate(free) if sizes[name] <= f), None)
        if k is None:
            calls.append([])
            free.append(room)
            k = len(calls) - 1
        calls[k].append(name)
        free[k] -= sizes[name]
    return calls[1:] + calls[:1]


def compact(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (t.half() if t.is_floating_point() and t.numel() * t.element_size() >= SMALL_BYTES else t.float())
            for k, t in weights.items()}


def pack(source: Path, out: Path, budget: int, margin: int, data: list[Path], base: int | None = None) -> list[Path]:
    """Shards of `source` into out/call1, out/call2, ...; `base` is what every call uploads anyway
    (default: this repository's travelling files)."""
    weights = compact(load_file(str(source)))
    sizes = {k: t.numel() * t.element_size() for k, t in weights.items()}
    base = travelling_bytes() if base is None else base
    photos = sum(folder_bytes(p) for p in data)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    # Each call's folder also holds the manifest and a safetensors header (under 128 bytes a tensor).
    files = len(json.dumps({"source_sha256": digest, "calls": 99, "keys": dict.fromkeys(weights, 99)}, indent=1)) \
        + 128 * len(weights) + 1024
    room = budget - margin - base - files
    calls = plan_calls(sizes, room, room - photos)
    if out.exists():
        strangers = [p.name for p in out.iterdir() if not (p.is_dir() and p.name.startswith("call"))]
        if strangers:
            raise ValueError(f"{out} holds files that `pack` did not write ({', '.join(strangers[:3])}); "
                             "name an empty or new folder with --out")
        shutil.rmtree(out)
    manifest = {"source_sha256": digest, "calls": len(calls), "keys": {k: i + 1 for i, names in
                                                                       enumerate(calls) for k in names}}
    folders = []
    for i, names in enumerate(calls, 1):
        folder = out / f"call{i}"
        folder.mkdir(parents=True)
        save_file({k: weights[k].contiguous() for k in names}, str(folder / f"perceptual-{i}.safetensors"))
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
        folders.append(folder)
    print(f"every call uploads {base / MIB:.1f} MiB of repository; budget {budget / MIB:.1f} MiB, "
          f"margin {margin / MIB:.1f} MiB")
    for i, folder in enumerate(folders, 1):
        carry = [folder] + (data if i == len(folders) else [])
        upload = base + sum(folder_bytes(c) for c in carry)
        names = " ".join(_shown(c) for c in carry)
        print(f"call {i}: carry {names} ({upload / MIB:.1f} MiB up)"
              + ("" if i == len(folders) else f"; run: python3 scripts/carry.py stash {_shown(folder)}"))
    return folders


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def stash(folder: Path) -> None:
    """Copy one call's shards out of the repository copy, which the next call's upload may replace."""
    STASH.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, STASH / folder.name, dirs_exist_ok=True)
    print(f"stashed {folder} in {STASH / folder.name}")


def unpack(folders: list[Path], into: Path) -> Path:
    """Join the shards in `folders` into `into`/perceptual.safetensors (float32)."""
    shards = sorted({p.name: p for f in folders if f.is_dir() for p in f.glob("perceptual-*.safetensors")}.values())
    manifests = [f / MANIFEST for f in folders if (f / MANIFEST).is_file()]
    if not manifests:
        raise SystemExit(f"no {MANIFEST} in {', '.join(map(str, folders)) or 'no folder'}: run `pack` here "
                         "and carry its folders")
    manifest = json.loads(manifests[0].read_text())
    sources = {json.loads(m.read_text())["source_sha256"] for m in manifests}
    if len(sources) > 1:
        raise SystemExit(f"shards of {len(sources)} different packs in {', '.join(map(str, folders))}: "
                         "carry the folders of one `pack` run only")
    weights: dict[str, torch.Tensor] = {}
    for shard in shards:
        weights.update({k: t.float() for k, t in load_file(str(shard)).items()})
    missing = sorted({manifest["keys"][k] for k in manifest["keys"] if k not in weights})
    if missing:
        raise SystemExit(f"perceptual weights incomplete: the shards of call(s) {missing} are not here "
                         f"(found {[s.name for s in shards]}). Each call before the last must run "
                         f"`scripts/carry.py stash` on the same machine, which must still be warm.")
    into.mkdir(parents=True, exist_ok=True)
    target = into / "perceptual.safetensors"
    save_file({k: weights[k].contiguous() for k in manifest["keys"]}, str(target))
    print(f"{target}: {len(weights)} tensors from {len(shards)} shards")
    return target


def pieces(model: Path, out: Path, piece: int) -> list[Path]:
    """`model` as float16 in pieces of at most `piece` bytes, plus `<name>.sha256` of the whole file."""
    from gendr_pix import load_model
    from gendr_pix.checkpoint import save_model

    out.mkdir(parents=True, exist_ok=True)
    whole = out / "model.safetensors"
    save_model(load_model(model), whole)  # float16, as the bundled model is stored
    data = whole.read_bytes()
    (out / "model.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    names = []
    for i in range(0, len(data), piece):
        names.append(out / f"model.{i // piece:02d}")
        names[-1].write_bytes(data[i:i + piece])
    whole.unlink()
    print(f"{model} -> {len(names)} float16 pieces in {out}")
    return names


def join(target: Path, parts: list[Path]) -> None:
    chunks = sorted((p for p in parts if p.suffix[1:].isdigit()), key=lambda p: int(p.suffix[1:]))
    if not chunks:
        raise SystemExit("no pieces (model.00, model.01, ...) given")
    data = b"".join(p.read_bytes() for p in chunks)
    checksum = next((p for p in parts if p.suffix == ".sha256"), chunks[0].with_suffix(".sha256"))
    if not checksum.is_file():
        raise SystemExit(f"{checksum}: not found; it comes back with the pieces and proves them complete")
    if checksum.read_text().split()[0] != hashlib.sha256(data).hexdigest():
        raise SystemExit(f"{target}: the joined pieces do not match {checksum} (a piece is missing or cut short)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    with safe_open(str(tmp), "pt"):  # a readable safetensors file, or an error before anything is replaced
        pass
    tmp.replace(target)
    print(f"{target}: {len(chunks)} pieces, {len(data) / MIB:.1f} MiB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="(here) float16 shards of the perceptual weights, one folder per call")
    a.add_argument("--source", type=Path, default=None, help="default: <cache>/perceptual.safetensors")
    a.add_argument("--out", type=Path, default=REPO / ".carry")
    a.add_argument("--budget-mib", type=float, default=64.0, help="upload limit of one call")
    a.add_argument("--margin-mib", type=float, default=1.0, help="left free in every call")
    a.add_argument("--data", type=Path, nargs="*", default=[REPO / "data/photos/train"],
                   help="folders the last call carries too")
    a = sub.add_parser("stash", help="(there) keep one call's shards for the next call")
    a.add_argument("folder", type=Path)
    a = sub.add_parser("unpack", help="(there) join the shards into <into>/perceptual.safetensors")
    a.add_argument("folders", type=Path, nargs="*")
    a.add_argument("--into", type=Path, required=True)
    a = sub.add_parser("pieces", help="(there) a model as float16 pieces under the download cap")
    a.add_argument("model", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--piece-mib", type=float, default=15.0)
    a = sub.add_parser("join", help="(here) pieces back into one model file, sha256 checked")
    a.add_argument("target", type=Path)
    a.add_argument("parts", type=Path, nargs="+")
    args = p.parse_args(argv)

    if args.command == "pack":
        from gendr_pix.training.perceptual import weights_path

        source = args.source or weights_path()
        if not source.is_file():
            raise SystemExit(f"{source}: not found; run `python -m gendr_pix fetch-weights` first")
        try:
            pack(source, args.out, int(args.budget_mib * MIB), int(args.margin_mib * MIB), args.data)
        except ValueError as e:
            raise SystemExit(f"pack: {e}") from None
    elif args.command == "stash":
        stash(args.folder)
    elif args.command == "unpack":
        unpack(args.folders, args.into)
    elif args.command == "pieces":
        pieces(args.model, args.out, int(args.piece_mib * MIB))
    else:
        join(args.target, args.parts)


if __name__ == "__main__":
    main()
