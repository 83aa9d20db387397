"""Train LIIR (or a baseline) with a hydra configuration from torchrl_liir/conf/: the installed
``torchrl-liir-train`` command (:func:`torchrl_liir.cli.main`), run from a checkout.

    python scripts/train.py                          # LIIR on 1D Pursuit
    python scripts/train.py algo=central_v seed=3    # a baseline
    python scripts/train.py task=smax task.map=3m   # LIIR on SMAX battles
    python scripts/train.py resume=runs/<run>        # continue a run from its latest checkpoint
    python scripts/train.py -m seed=0,1,2 algo=liir,central_v hydra/launcher=joblib   # a sweep
"""
from torchrl_liir.cli import main

if __name__ == "__main__":
    main("python scripts/train.py")
