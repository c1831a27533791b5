"""The options of the ``cropsearch`` commands: types, bounds and help texts, shared by the
commands that take them. Bounds come from the settings models (``strict.bounds``); defaults
are given where each command declares an option, from :mod:`search.settings`.

Each help text is a whole sentence that says what the option defaults to: Typer appends
``[default: X]`` to an option with a plain default; an option without one says it in words,
``(default: ...)``, and sets ``show_default=False``. Typer reads help as Rich markup, where
``[...]`` is a style tag and vanishes, so defaults are written in parentheses."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import typer

from search.settings import (
    ALGORITHMS,
    DEFAULT_PRUNER,
    DEFAULT_SPACE,
    SCREEN_SAMPLES,
    Engine,
    Pruner,
    TrainConfig,
)
from search.strict import bounds

#: CLI bounds are the model's bounds (TrainConfig), never a second copy.
EPOCHS = bounds(TrainConfig, "epochs")
SEEDS = bounds(TrainConfig, "seed")

DATA_SPEC_HELP = (
    "Dataset spec: shapes, mnist:DIR, csv:FILE, voc:DIR, coco:FILE, tfrecord:GLOB "
    "or folder:DIR[,key=value...]."
)


def _finite(value: float | None) -> float | None:
    """Typer callback: ``nan`` and ``inf`` pass click's range checks; refuse them."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _algorithms(engine: str) -> str:
    """``tpe (default), random, grid``: the engine's algorithms, its default marked."""
    default, *others = ALGORITHMS[engine]
    return ", ".join([f"{default} (default)", *others])


# -- shared by several commands -------------------------------------------------------------
DataOption = Annotated[str, typer.Option(help=DATA_SPEC_HELP)]
StorageOption = Annotated[
    str, typer.Option(help="Optuna storage URL (sqlite:///FILE or postgresql://...).")
]
TrackingOption = Annotated[str, typer.Option(help="MLflow tracking URI.")]
StudyOption = Annotated[
    str | None,
    typer.Option(
        help="Study name; an existing study is resumed (default: a new name from the data, "
        "the space and the time).",
        show_default=False,
    ),
]
#: Commands that read a study take the latest one without --study (``lookup.latest_study``).
LatestStudyOption = Annotated[
    str | None,
    typer.Option(help="Study name (default: the latest study in the storage).", show_default=False),
]
#: The stores of a study several processes share; the environment passes them to workers.
SharedStorageOption = Annotated[
    str, typer.Option(envvar="CROPSEARCH_STORAGE", help="The study's Optuna storage URL.")
]
SharedTrackingOption = Annotated[
    str, typer.Option(envvar="CROPSEARCH_TRACKING_URI", help="The study's MLflow tracking URI.")
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", help="Also show TensorFlow's start-up log lines (default: off)."),
]
TopOption = Annotated[
    int, typer.Option(min=1, max=20, help="Policies to confirm besides the baseline.")
]
RepeatsOption = Annotated[
    int, typer.Option(min=2, max=20, help="Training seeds per confirmed policy.")
]
ProcessesOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=64,
        help="Processes that train the confirmation's runs of a round side by side, the "
        "cores shared between them; 1 trains one run at a time with every core "
        "(default: one per core, at most 4).",
        show_default=False,
    ),
]

# -- search ---------------------------------------------------------------------------------
SpaceOption = Annotated[
    Path | None,
    typer.Option(
        help=f"Search-space YAML file (default: {DEFAULT_SPACE} of the working directory, else "
        "the one shipped with the package).",
        show_default=False,
    ),
]
TrialsOption = Annotated[
    int,
    typer.Option(
        min=1, help="Screening trials to run, the baseline included; on resume, trials to add."
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        min=1,
        callback=_finite,
        help="Wall-clock budget of the whole command in seconds, confirmation included: "
        "screening stops early and confirmation trains on a share of the data to fit "
        "(default: no limit).",
        show_default=False,
    ),
]
EpochsOption = Annotated[
    int,
    typer.Option(
        min=EPOCHS[0],
        max=EPOCHS[1],
        help="Training epochs of each confirmation run (the full budget).",
    ),
]
ScreenEpochsOption = Annotated[
    int | None,
    typer.Option(
        min=EPOCHS[0],
        max=EPOCHS[1],
        help="Training epochs of each screening trial (default: half of --epochs, at least 1; "
        "a resumed study keeps its own).",
        show_default=False,
    ),
]
SeedOption = Annotated[
    int,
    typer.Option(
        min=SEEDS[0],
        max=SEEDS[1],
        help="Seed from which the sampler, training and confirmation seeds derive.",
    ),
]
ScreenOption = Annotated[
    float | None,
    typer.Option(
        min=0.001,
        max=1.0,
        callback=_finite,
        help="Share of the training split each screening trial trains on "
        f"(default: all of it up to {SCREEN_SAMPLES:,} samples).",
        show_default=False,
    ),
]
ConfirmOption = Annotated[
    bool, typer.Option(help="Confirm the top policies over seeds after the search.")
]
EngineOption = Annotated[
    Engine,
    typer.Option(help="Search engine; keras-tuner keeps its state in mlruns/keras-tuner/."),
]
AlgorithmOption = Annotated[
    str | None,
    typer.Option(
        help=f"Search algorithm of the engine; optuna: {_algorithms('optuna')} (each float "
        f"parameter needs a step); keras-tuner: {_algorithms('keras-tuner')}.",
        show_default=False,
    ),
]
PrunerOption = Annotated[
    Pruner | None,
    typer.Option(
        help=f"Optuna's pruner, fed each epoch's validation accuracy (default: {DEFAULT_PRUNER}).",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        metavar="MODULE:ATTR",
        help="Your network: a keras-tuner HyperModel (class or instance) or a build(hp) "
        "callable on the Python path, or keras:NAME (a keras.applications network, "
        "weights=None) (default: the built-in compact CNN).",
        show_default=False,
    ),
]
ConfirmModelOption = Annotated[
    str | None,
    typer.Option(
        "--confirm-model",
        metavar="MODULE:ATTR",
        help="After the confirmation, confirm the same policies again on this network (any "
        "--model form, or keras:NAME, a keras.applications network from scratch) and compare "
        "(default: none).",
        show_default=False,
    ),
]
ConfirmOnModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="MODULE:ATTR",
        help="Confirm on this network instead of the study's (any --model form of search, or "
        "keras:NAME: a keras.applications network, weights=None), kept beside the study's own "
        "(default: the study's network).",
        show_default=False,
    ),
]
SizeOption = Annotated[
    str | None,
    typer.Option(
        metavar="H,W",
        help="Cut the same policies at this output size; the windows do not change (default: "
        "each policy's size).",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        min=1,
        max=64,
        help="Worker processes sharing the trials (each gets a share of the cores); "
        "on sqlite they run on this machine, across machines use PostgreSQL.",
    ),
]

BoxesOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="SOURCE",
        help="The boxes the crop will see at inference, to choose it for: exact (the "
        "annotations), iou:X (annotations disturbed to mean IoU X, e.g. iou:0.75, like a "
        "detector's), none (no box: object crops fall back to the full image) or "
        "detections:FILE (your detector's COCO results JSON or CSV); validation and test are "
        "scored with them (default: the study's own when it exists, else exact).",
        show_default=False,
    ),
]

# -- confirm --------------------------------------------------------------------------------
StudyDataOption = Annotated[
    str | None,
    typer.Option(help="Dataset spec (default: the study's own data).", show_default=False),
]
StudySeedOption = Annotated[
    int | None,
    typer.Option(
        min=SEEDS[0],
        max=SEEDS[1],
        help="Seed from which the confirmation seeds derive (default: the study's seed).",
        show_default=False,
    ),
]
StudyEpochsOption = Annotated[
    int | None,
    typer.Option(
        min=EPOCHS[0],
        max=EPOCHS[1],
        help="Training epochs per run (default: the study's epochs).",
        show_default=False,
    ),
]

# -- export ---------------------------------------------------------------------------------
PolicyOutputOption = Annotated[Path, typer.Option("--output", "-o", help="Policy file to write.")]
TrialOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Trial to export (default: the study's answer: the confirmed winner, else the best "
        "screening trial).",
        show_default=False,
    ),
]
RunIdOption = Annotated[
    str | None,
    typer.Option(
        help="MLflow run (a trial or confirmation run) whose trial to export (default: none, "
        "the study's answer).",
        show_default=False,
    ),
]
RunTrackingOption = Annotated[str, typer.Option(help="MLflow tracking URI (read with --run-id).")]
FormatOption = Annotated[
    Literal["yaml", "json"] | None,
    typer.Option(
        "--format",
        help="File format (default: json for a .json output, else yaml).",
        show_default=False,
    ),
]

# -- status -------------------------------------------------------------------------------
AllStudiesOption = Annotated[
    bool,
    typer.Option(
        "--all",
        help="List every study in the store with its trial counts, not one study's status "
        "(default: off).",
    ),
]

# -- ui, dashboard, apply, preview --------------------------------------------------------------
HostOption = Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it local.")]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")]
ServedStudyOption = Annotated[
    str | None,
    typer.Option(
        help="Study whose link is printed (default: the latest study in the storage).",
        show_default=False,
    ),
]
PolicyFileOption = Annotated[
    Path, typer.Option(help="Policy file, as 'cropsearch export' writes it (YAML or JSON).")
]
CropsFolderOption = Annotated[
    Path, typer.Option(help="New or empty folder for the crops and manifest.")
]
TrainModeOption = Annotated[
    bool,
    typer.Option("--train", help="Cut train-mode (random) windows (default: eval-mode windows)."),
]
PolicyFieldsOption = Annotated[
    Path | None,
    typer.Option(
        help="Policy file, as 'cropsearch export' writes it, or a field mapping (default: the "
        "default policy).",
        show_default=False,
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="Set a policy field, over --policy; repeatable, YAML values: 0.3, [48, 64] "
        "(default: none).",
        show_default=False,
    ),
]
PreviewSeedOption = Annotated[
    int, typer.Option(min=SEEDS[0], max=SEEDS[1], help="Seed of the train-mode randomness.")
]

# -- data, preview -----------------------------------------------------------------------------
DataPreviewOption = Annotated[
    Path | None,
    typer.Option(
        help="Also draw samples with their boxes into this PNG (default: no picture).",
        show_default=False,
    ),
]
PreviewOutputOption = Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")]
PreviewTrainOption = Annotated[
    bool, typer.Option("--train", help="Only train-mode crops (default: both modes).")
]
PreviewEvalOption = Annotated[
    bool, typer.Option("--eval", help="Only eval-mode crops (default: both modes).")
]
PreviewCountOption = Annotated[
    int, typer.Option("--n", min=1, max=64, help="Validation samples shown.")
]


class OptionError(ValueError):
    """An option value its type cannot check (``--size H,W``)."""


def parse_size(size: str | None) -> tuple[int, int] | None:
    """``--size H,W`` as two whole numbers of pixels; one line naming the value otherwise."""
    if size is None:
        return None
    parts = size.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and 8 <= int(p) <= 1024 for p in parts):
        raise OptionError(f"--size '{size}': expected H,W in pixels (8 to 1024 each), e.g. 96,96")
    return int(parts[0]), int(parts[1])
