"""One-off surgery on a pixel-mode run's last.pt: give the positive/negative embeddings fresh values
(std 1) and their own AdamW group with a learning-rate multiplier, keeping everything else.

Used once for the bundled model (see MODEL_CARD.md): it was started with embeddings of std 0.02 and a
single LR, and after 2k steps guidance still changed nothing, because the two conditions were almost
the same vector. Later runs start with the fixed defaults (model.embedding_std, run.embedding_lr_mult).

    python scripts/reinit_embeddings.py runs/small-x4/last.pt --std 1.0 --lr-mult 10 --seed 1
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("state")
    p.add_argument("--std", type=float, default=1.0)
    p.add_argument("--lr-mult", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    state = torch.load(a.state, map_location="cpu", weights_only=True)
    g = torch.Generator().manual_seed(a.seed)
    for key in ("positive", "negative"):
        value = torch.randn(state["generator"][key].shape, generator=g) * a.std
        state["generator"][key] = value
        state["ema"][key] = value.clone()
    opt = state["opt_g"]
    (group,) = opt["param_groups"]  # the old single group: [positive, negative, unet...]
    emb, rest = group["params"][:2], group["params"][2:]
    opt["param_groups"] = [dict(group, params=emb, lr_mult=a.lr_mult), dict(group, params=rest, lr_mult=1.0)]
    for i in emb:
        opt["state"].pop(i, None)  # fresh Adam moments for the new values
    torch.save(state, a.state)
    print(f"re-initialised embeddings (std {a.std}) at step {state['step']}; LR x{a.lr_mult}")


if __name__ == "__main__":
    main()
