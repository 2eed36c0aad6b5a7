"""``tinyml-kit diffaug``: train a data-efficient GAN on a fraction of a dataset and score it with FID/KID.

    tinyml-kit diffaug train --data fashion_mnist --fraction 0.1 --steps 2000 --augment diffaug --out runs/da
    tinyml-kit diffaug features --data fashion_mnist     # train/cache the offline FID feature classifier

TensorFlow is imported only inside ``run``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyml_kit.diffaug._io import save_model, save_text
from tinyml_kit.diffaug.train import ARCHITECTURES, AUGMENT_MODES, TrainConfig

CLASSIFIER_NOTE = "classifier features: not comparable to Inception-FID values in papers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="diffaug_command", metavar="ACTION")
    parser.set_defaults(_diffaug_parser=parser)

    train = sub.add_parser("train", help="train a GAN with DiffAugment on a fraction of a dataset")
    train.add_argument("--data", default="fashion_mnist", help="built-in dataset (default fashion_mnist)")
    train.add_argument("--fraction", type=float, default=1.0, help="stratified fraction of the train split")
    train.add_argument("--data-seed", type=int, default=0, help="seed of the fraction's sample")
    train.add_argument("--steps", type=int, default=2000, help="training steps (one D and one G update each)")
    train.add_argument("--augment", choices=AUGMENT_MODES, default="diffaug")
    train.add_argument("--policy", default="color,translation,cutout", help="DiffAugment policy")
    train.add_argument("--arch", choices=ARCHITECTURES, default="dcgan")
    train.add_argument("--width", type=int, default=None, help="base channel width (dcgan 64, resnet 128)")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--latent-dim", type=int, default=128)
    train.add_argument("--loss", choices=("hinge", "ns"), default="hinge")
    train.add_argument("--r1-gamma", type=float, default=0.0, help="R1 penalty weight (0 = off)")
    train.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of G (and of D)")
    train.add_argument("--d-lr", type=float, default=None, help="Adam learning rate of D (default: --lr)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--log-every", type=int, default=200, help="steps per progress epoch / sample grid")
    train.add_argument("--ada-target", type=float, default=0.6, help="adaptive: target E[sign(D(real))]")
    train.add_argument(
        "--ada-speed", type=float, default=0.02, help="adaptive: max change of p per 1k images"
    )
    train.add_argument("--fid-samples", type=int, default=10_000, help="generated images scored (0 = skip)")
    train.add_argument(
        "--inception-weights", type=Path, default=None,
        help="local InceptionV3 weights file for Inception-FID (default: offline classifier features)",
    )  # fmt: skip
    train.add_argument(
        "--out", type=Path, required=True, help="output folder (grids, generator, metrics.json)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    features = sub.add_parser(
        "features", help="train (once) and report the offline FID/KID feature classifier"
    )
    features.add_argument("--data", default="fashion_mnist")
    features.add_argument("--retrain", action="store_true", help="ignore the cached classifier")


def _extractor(args: argparse.Namespace) -> object:
    from tinyml_kit.diffaug.features import classifier_extractor, inception_extractor

    if getattr(args, "inception_weights", None) is not None:
        return inception_extractor(args.inception_weights)
    return classifier_extractor(args.data)


def _run_features(args: argparse.Namespace) -> int:
    from tinyml_kit.diffaug.features import classifier_extractor

    extractor = classifier_extractor(args.data, retrain=args.retrain)
    print(f"{extractor.describe()}: {json.dumps(extractor.info)}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from tinyml_kit import data
    from tinyml_kit.diffaug.features import reference_features
    from tinyml_kit.diffaug.train import evaluate_gan, train_gan

    config = TrainConfig(
        augment=args.augment, policy=args.policy, arch=args.arch, steps=args.steps,
        batch_size=args.batch_size, latent_dim=args.latent_dim, width=args.width, loss=args.loss,
        r1_gamma=args.r1_gamma, g_lr=args.lr, d_lr=args.d_lr or args.lr, seed=args.seed,
        log_every=min(args.log_every, args.steps), ada_target=args.ada_target, ada_speed=args.ada_speed,
    )  # fmt: skip
    train_set = data.load(args.data, "train")
    if args.fraction < 1.0:
        train_set = train_set.subset(fraction=args.fraction, seed=args.data_seed)
    print(f"tinyml-kit diffaug: {len(train_set)} {args.data} images ({args.fraction:.0%}), "
          f"{config.steps} steps, augment={config.augment} ({config.policy}), arch={config.arch}",
          flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    result = train_gan(config, train_set.x, out_dir=args.out, verbose=0 if args.quiet else 1)
    save_model(result.gan.ema_generator, args.out / "generator_ema.keras")
    summary = {
        "data": args.data,
        "fraction": args.fraction,
        "train_images": len(train_set),
        **result.summary(),
    }
    print(f"tinyml-kit diffaug: trained {result.steps} steps in {result.seconds:.0f} s "
          f"({1000 * result.step_seconds:.1f} ms/step); samples in {args.out}", flush=True)  # fmt: skip
    if args.fid_samples > 0:
        extractor = _extractor(args)
        reference = reference_features(extractor, args.data, "train")
        scores = evaluate_gan(result.gan, extractor, reference, n_samples=args.fid_samples, seed=args.seed)
        summary["metrics"] = {**scores, "features": extractor.describe()}
        note = "" if extractor.name.startswith("inception") else f"  [{CLASSIFIER_NOTE}]"
        kid_text = f"{1000 * scores['kid']:.3f} ± {1000 * scores['kid_std']:.3f} (x1e-3)"
        print(f"FID {scores['fid']:.3f}  KID {kid_text}  on {scores['n_fake']} samples vs the full "
              f"{args.data} train split, {extractor.describe()}{note}")  # fmt: skip
    save_text(args.out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.diffaug_command == "train":
        return _run_train(args)
    if args.diffaug_command == "features":
        return _run_features(args)
    args._diffaug_parser.print_help()
    return 0
