"""The ``latentjax`` command line. Each subcommand parses flags and calls one library function.

Config values are overridden as in the Flax examples: ``--config.gan_training.epochs=5``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from latentjax.errors import LatentjaxError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentjax",
        description="Find and use the latent dimensions of a GAN that control each concept.",
        epilog="Override any config value with --config.KEY=VALUE, e.g. --config.seed=3.",
    )
    parser.add_argument(
        "--debug", action="store_true",
        help="show the full traceback of an error (anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("--config", required=True, help="a shipped config by name (default, tiny, zappos, full, sweep, ...) or a config file, e.g. configs/default.py")
        return p

    for name, what, func in (("train-classifier", "the classifier", _train_classifier), ("train-gan", "the GAN", _train_gan)):
        p = with_config(sub.add_parser(name, help=f"train {what} into a run directory"))
        p.set_defaults(func=func)
        p.add_argument("--workdir", required=True, help="run directory (must be new unless --resume)")
        p.add_argument("--resume", action="store_true", help="continue the run in --workdir")

    p = with_config(sub.add_parser("evaluate", help="print the models' quality numbers"))
    p.set_defaults(func=_evaluate)
    p.add_argument("--pretrained", default=None, help="shipped name or exported folder")
    p.add_argument("--classifier-run", default=None, help="evaluate this classifier run instead")
    p.add_argument("--gan-run", default=None, help="evaluate this GAN run instead")
    p.add_argument(
        "--gan-weights",
        choices=("average", "last"),
        default="average",
        help="with --gan-run: the generator's moving average (what export writes) or last update",
    )
    p.add_argument(
        "--model-seed",
        type=int,
        default=None,
        help="with runs of several config.model_seeds: which seed's models (default the first)",
    )
    p.add_argument("--output", default=None, help="also write the numbers to this new JSON file")
    p.add_argument(
        "--samples-grid",
        default=None,
        help="also write 100 generator samples (codes from key 0) as a 10x10 PNG grid to this new file",
    )

    p = with_config(sub.add_parser("reproduce", help="reproduce the paper: Table 1, figures, report"))
    p.set_defaults(func=_reproduce)
    p.add_argument("--workdir", default=None, help="new run directory (default: runs/reproduce-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    p.add_argument(
        "--train-models",
        action="store_true",
        help="train the classifier and GAN inside the run directory instead of loading "
        "config.analysis.pretrained (same as --config.analysis.train_models=True)",
    )

    p = with_config(sub.add_parser(
        "sweep", help="a grid of analysis settings over model and analysis seeds (config.sweep)"
    ))
    p.set_defaults(func=_sweep)
    p.add_argument("--workdir", default=None, help="new sweep directory (default: runs/sweep-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --workdir")

    p = sub.add_parser("directions", help="write a finished reproduction's directions as files (.npz and .json)")
    p.set_defaults(func=_directions)
    p.add_argument("--run", required=True, help="the reproduction's run directory")
    p.add_argument("--output", default=None, help="new folder for the files (default: <run>/directions)")

    p = sub.add_parser("edit", help="move codes along a saved direction: grid.png, edit.gif, edited.npz")
    p.set_defaults(func=_edit)
    p.add_argument("--directions", required=True, help="a directions file (.npz, from reproduce or `directions`)")
    p.add_argument("--row", required=True, help="which direction: a class or attribute name, or its index")
    p.add_argument("--finder", default=None, help="the finder's set, where the file holds several")
    p.add_argument("--models", default="fashion_mnist", help="shipped name or exported folder (default: fashion_mnist)")
    codes = p.add_mutually_exclusive_group()
    codes.add_argument("--codes", default=None, help="codes to move, a .npy of [M, N] (default: the prior)")
    codes.add_argument("--images", nargs="+", default=None,
                       help="or real images to invert first: photos (PNG, JPEG, ...; made grey or RGB and resized "
                            "to the generator's images) or one .npy of [M, H, W, C] in [-1, 1]")
    p.add_argument("--seed", type=int, default=0, help="draws the prior codes (or starts the inversion)")
    p.add_argument("--num-codes", type=int, default=8, help="prior codes to draw (default: 8)")
    p.add_argument("--distances", default=None, help="comma-separated L2 distances (default: -6,-4,-2,0,2,4,6)")
    p.add_argument("--no-gif", action="store_true", help="write no edit.gif")
    p.add_argument("--output", required=True, help="new folder for the edit")

    p = with_config(sub.add_parser("export", help="export two finished runs as pretrained models"))
    p.set_defaults(func=_export)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--classifier-run", help="the classifier's training run")
    source.add_argument(
        "--classifier-pretrained",
        help="or the classifier of shipped/exported models, e.g. fashion_mnist",
    )
    p.add_argument("--gan-run", required=True)
    p.add_argument("--destination", required=True, help="new folder for the exported models")
    return parser


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    rest, overrides = [], []
    for arg in argv:
        if arg.startswith("--config."):
            overrides.append(arg[len("--config.") :])
        else:
            rest.append(arg)
    return rest, overrides


def _print_quality(quality: dict) -> None:
    gan = quality["gan"]
    lines = [
        f"classifier test accuracy: {100 * quality['classifier_test_accuracy']:.2f}%",
        f"GAN samples labelled with p >= {gan['confidence_threshold']}: "
        f"{100 * gan['confident_share']:.1f}% of {gan['num_samples']}",
        "GAN class histogram (%): " + " ".join(f"{100 * h:.1f}" for h in gan["class_histogram"]),
        f"Frechet distance (classifier features) samples vs test: "
        f"{gan['frechet_distance_samples_vs_test']:.3f}",
        f"  real train vs test: {gan['frechet_distance_train_vs_test']:.3f}",
    ]
    if "frechet_distance_untrained_vs_test" in gan:
        lines.append(f"  untrained generator vs test: {gan['frechet_distance_untrained_vs_test']:.3f}")
    print("\n".join(lines))


# One function per subcommand: ``(args, config) -> None``. Heavy modules are imported inside, so
# that `latentjax --help` answers at once.


def _train_classifier(args, config) -> None:
    from latentjax.experiment import training_runs

    training_runs.train_classifier(config, args.workdir, resume=args.resume)


def _train_gan(args, config) -> None:
    from latentjax.experiment import training_runs

    training_runs.train_gan(config, args.workdir, resume=args.resume)


def _evaluate(args, config) -> None:
    from latentjax.storage.files import atomic_write_text
    from latentjax.experiment import workflows

    for path in (args.output, args.samples_grid):
        if path and pathlib.Path(path).exists():
            raise FileExistsError(f"{path} exists; refusing to overwrite it.")
    models = workflows.load_models(
        config, pretrained=args.pretrained, classifier_run=args.classifier_run,
        gan_run=args.gan_run, generator_weights=args.gan_weights, seed=args.model_seed,
    )
    quality = workflows.evaluate_models(config, models)
    _print_quality(quality)
    if args.output:
        atomic_write_text(args.output, json.dumps(quality, indent=2))
    if args.samples_grid:
        from latentjax.images import save_image_grid

        save_image_grid(args.samples_grid, workflows.sample_images(models, 100, seed=0), ncols=10)


def _reproduce(args, config) -> None:
    from latentjax.experiment import reproduce, summaries

    workdir = args.workdir or reproduce.default_workdir(config)
    print(summaries.summary(reproduce.reproduce(config, workdir, resume=args.resume)))


def _sweep(args, config) -> None:
    from latentjax.experiment import sweep

    workdir = args.workdir or sweep.default_workdir(config)
    print(sweep.summary(sweep.run_sweep(config, workdir, resume=args.resume)))


def _directions(args, config) -> None:
    from latentjax.experiment.directions_export import export_directions

    paths = export_directions(args.run, args.output)
    print(f"wrote {len(paths)} direction files to {paths[0].parent if paths else args.output}")


def _edit(args, config) -> None:
    from latentjax.experiment.edit import DEFAULT_DISTANCES, edit_to_folder

    distances = DEFAULT_DISTANCES
    if args.distances:
        try:
            distances = tuple(float(d) for d in args.distances.split(","))
        except ValueError:
            raise ValueError(f"--distances={args.distances!r}: expected comma-separated numbers, e.g. -3,0,3.") from None
    folder = edit_to_folder(
        args.directions, args.row, args.output, models=args.models, finder=args.finder,
        codes_path=args.codes, images_path=args.images, seed=args.seed, num_codes=args.num_codes,
        distances=distances, gif=not args.no_gif,
    )
    print(f"wrote {', '.join(sorted(p.name for p in folder.iterdir() if not p.name.startswith('latentjax')))} to {folder}")


def _export(args, config) -> None:
    from latentjax.experiment import workflows

    quality = workflows.export_from_runs(
        config, args.classifier_run, args.gan_run, args.destination,
        classifier_pretrained=args.classifier_pretrained,
    )
    if config.model_seeds:
        for seed, numbers in quality.items():
            print(f"model seed {seed} (exported to {args.destination}/seed{seed}):")
            _print_quality(numbers)
    else:
        _print_quality(quality)
    print(f"exported to {args.destination}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # --debug may stand anywhere on the line, before or after the subcommand.
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    rest, overrides = _split_overrides(argv)
    args = _parser().parse_args(rest)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a stage's line shows when it ends, in a log too
    from latentjax.analysis.parallel import use_host_cores

    try:
        use_host_cores()  # one XLA device per CPU core: sharded sweeps use every core
    except RuntimeError:
        pass  # called from Python after JAX started (a test, a notebook): its devices stay
    try:
        from latentjax import config as config_lib

        if getattr(args, "train_models", False):
            overrides = [*overrides, "analysis.train_models=True"]
        if not hasattr(args, "config"):  # reads its settings from the run it is given
            if overrides:
                raise ValueError(f"--config.{overrides[0]}: {args.command!r} takes no config overrides.")
            args.func(args, None)
            return 0
        args.func(args, config_lib.apply_overrides(config_lib.load_config(args.config), overrides))
    except KeyboardInterrupt:
        print("latentjax: interrupted; finished stages are saved: continue with --resume.", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"latentjax: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, (LatentjaxError, FileExistsError, FileNotFoundError, ValueError)) else 1
    return 0


def _one_line(exc: BaseException) -> str:
    """The message of an error on one line; unexpected errors say how to see more."""
    if isinstance(exc, LatentjaxError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        what = exc.strerror or type(exc).__name__
        return f"{what}: {exc.filename!r} (rerun with --debug for the traceback)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    if isinstance(exc, (FileExistsError, FileNotFoundError, ValueError)):
        return text
    return f"{type(exc).__name__}: {text} (rerun with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
