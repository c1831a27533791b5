"""The ``cropsearch`` command line."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from search.crop.policy import KINDS, OBJECT_KINDS, PolicyError
from search.data import DataError, Dataset
from search.names import StudyNameError
from search.ops.signals import Interrupted
from search.ops.uris import UriError, redact
from search.results.export import PolicyFileError
from search.safe_yaml import MESSAGE_CHARS, YamlFileError, clip
from search.settings import DEFAULT_STORAGE, DEFAULT_TRACKING, TrainConfig
from search.space import Space, SpaceError
from search.strict import bounds

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna

    from search.engines.keras_tuner_records import KerasTunerRecords
    from search.study.record import TrialRecord

app = typer.Typer(
    help="Search the crop policy for a compact CNN: Optuna trials, tracked in MLflow.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DEFAULT_SPACE = "spaces/default.yaml"
DATA_SPEC_HELP = (
    "Dataset spec: shapes, mnist:DIR, csv:FILE, voc:DIR, coco:FILE, tfrecord:GLOB "
    "or folder:DIR[,key=value...]"
)
#: The space a search on box-free data (``folder:DIR``) uses when --space is not given.
BOX_FREE_SPACE = "spaces/classic.yaml"

StorageOption = Annotated[str, typer.Option(help="Optuna storage URL (RDB or journal).")]
StudyOption = Annotated[str | None, typer.Option(help="Study name; an existing study is resumed.")]
#: The stores of a study several processes share; the environment passes them to workers.
SharedStorageOption = Annotated[
    str, typer.Option(envvar="CROPSEARCH_STORAGE", help="The study's Optuna storage URL.")
]
SharedTrackingOption = Annotated[
    str, typer.Option(envvar="CROPSEARCH_TRACKING_URI", help="The study's MLflow tracking URI.")
]


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""


_USER_ERRORS: tuple[type[Exception], ...] = (
    UserError,
    SpaceError,
    PolicyError,
    PolicyFileError,
    DataError,
    YamlFileError,
    UriError,
    StudyNameError,
)

#: CLI bounds are the model's bounds (TrainConfig), never a second copy.
EPOCHS = bounds(TrainConfig, "epochs")
SEEDS = bounds(TrainConfig, "seed")
VerboseOption = Annotated[
    bool, typer.Option("--verbose", help="Also show TensorFlow's start-up log lines.")
]


def _finite(value: float | None) -> float | None:
    """Typer callback: ``nan`` and ``inf`` pass click's range checks; refuse them."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _check_stores(study: str | None, storage: str | None, tracking_uri: str | None) -> None:
    """Refuse a bad study name or store URI before anything is created (each within seconds)."""
    from search.names import check_study_name
    from search.ops.uris import check_storage_uri, check_tracking_uri

    if study is not None:
        check_study_name(study)
    if storage is not None:
        check_storage_uri(storage)
    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)


def _raise_if_store_error(error: Exception) -> None:
    """A store that answered but refused us (wrong password, not a database): one line."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(error, SQLAlchemyError):
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise UserError(f"the study storage refused the connection: {reason}") from None


def _quiet_tensorflow(verbose: bool = False) -> None:
    """Keep TensorFlow's start-up lines (absl, oneDNN: written by C++ to file descriptor 2 even
    with TF_CPP_MIN_LOG_LEVEL=2) off the terminal unless ``verbose``; TensorFlow is still
    imported only where it is needed (:mod:`search.ops.quiet`)."""
    from search.ops.quiet import silence_first_import

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not verbose:
        silence_first_import("tensorflow")


TopOption = Annotated[
    int, typer.Option(min=1, max=20, help="Policies to confirm besides the baseline.")
]
RepeatsOption = Annotated[
    int, typer.Option(min=2, max=20, help="Training seeds per confirmed policy.")
]


@app.command()
def search(
    data: Annotated[str, typer.Option(help=DATA_SPEC_HELP)] = "shapes",
    space: Annotated[
        Path | None,
        typer.Option(
            help=f"Search-space YAML file [default: {DEFAULT_SPACE}].", show_default=False
        ),
    ] = None,
    trials: Annotated[
        int, typer.Option(min=1, help="Screening trials to run (including the baseline).")
    ] = 10,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            callback=_finite,
            help="Wall-clock budget of the whole command in seconds, confirmation included: "
            "screening stops early and confirmation trains on a share of the data to fit.",
        ),
    ] = None,
    epochs: Annotated[
        int, typer.Option(min=EPOCHS[0], max=EPOCHS[1], help="Training epochs per trial.")
    ] = 4,
    seed: Annotated[
        int,
        typer.Option(
            min=SEEDS[0],
            max=SEEDS[1],
            help="Seed from which the sampler, training and confirmation seeds derive.",
        ),
    ] = 0,
    screen: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=1.0,
            callback=_finite,
            help="Share of the training split each screening trial trains on "
            "[default: all of it up to 5,000 samples].",
            show_default=False,
        ),
    ] = None,
    confirm: Annotated[
        bool, typer.Option(help="Confirm the top policies over seeds after the search.")
    ] = True,
    top: TopOption = 3,
    repeats: RepeatsOption = 3,
    study: StudyOption = None,
    storage: StorageOption = DEFAULT_STORAGE,
    tracking_uri: Annotated[str, typer.Option(help="MLflow tracking URI.")] = DEFAULT_TRACKING,
    engine: Annotated[
        Literal["optuna", "keras-tuner"],
        typer.Option(help="Search engine; keras-tuner keeps its state in mlruns/keras-tuner/."),
    ] = "optuna",
    algorithm: Annotated[
        str | None,
        typer.Option(
            help="optuna: tpe (default), random, grid (each float parameter needs a step); "
            "keras-tuner: hyperband (default), bayesian, random.",
            show_default=False,
        ),
    ] = None,
    pruner: Annotated[
        Literal["median", "hyperband", "none"] | None,
        typer.Option(
            help="Optuna's pruner, fed each epoch's validation accuracy [default: median].",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:ATTR",
            help="Your network: a keras-tuner HyperModel (class or instance) or a build(hp) "
            "callable on the Python path [default: the built-in compact CNN].",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes sharing the trials (each gets a share of the cores); "
            "on sqlite they run on this machine, across machines use PostgreSQL.",
        ),
    ] = 1,
    verbose: VerboseOption = False,
) -> None:
    """Screen crop policies, confirm the best over seeds, and print the results."""
    from search.data import load_dataset
    from search.engines.common import SearchOptions, StudyError
    from search.settings import ALGORITHMS
    from search.engines.optuna import OptunaSearch
    from search.space import Space

    started = time.monotonic()
    _check_stores(study, storage, tracking_uri)
    if algorithm is not None and algorithm not in ALGORITHMS[engine]:
        raise UserError(
            f"--algorithm {clip(algorithm)} is not one of the {engine} engine's: "
            f"{', '.join(ALGORITHMS[engine])}"
        )
    if pruner is not None and engine != "optuna":
        raise UserError("--pruner is for the optuna engine (keras-tuner's hyperband stops trials)")
    if workers > 1 and (engine != "optuna" or timeout is not None):
        raise UserError("--workers runs the optuna engine without --timeout (use --trials)")
    search_space = Space.load(space) if space is not None else None
    _quiet_tensorflow(verbose)
    typer.echo(f"loading data {data} ...")
    try:
        dataset = load_dataset(data)
        if space is None or search_space is None:
            space = _default_space(DEFAULT_SPACE if dataset.has_boxes else BOX_FREE_SPACE)
            search_space = Space.load(space)
        _check_kinds(search_space, dataset, data)
        if study is not None:
            _check_engine(study, storage, engine)
        if algorithm == "grid":
            search_space.grid()  # a float parameter without a step: one line, before any trial
        if model is not None:
            _check_model(model, search_space, dataset)
        options = SearchOptions(
            trials,
            timeout,
            epochs,
            seed,
            study,
            storage,
            tracking_uri,
            screen,
            confirm,
            top,
            repeats,
            model=model,
            algorithm=algorithm,
            pruner=pruner or "median",
        )
        if engine == "keras-tuner":
            from search.engines.keras_tuner import KerasTunerSearch

            run: Any = KerasTunerSearch(dataset, search_space, options, echo=typer.echo)
        else:
            run = OptunaSearch(dataset, search_space, options, echo=typer.echo)
    except StudyError as error:
        raise UserError(str(error)) from None
    except Exception as error:
        _raise_if_store_error(error)
        raise
    sizes = ", ".join(f"{k} {len(getattr(dataset, k))}" for k in ("train", "val", "test"))
    typer.echo(
        f"data: {sizes} samples, {dataset.n_classes} classes "
        f"(ready in {time.monotonic() - started:.1f}s; fingerprint {dataset.fingerprint})"
    )
    where = redact(storage) if engine == "optuna" else str(run.root / run.name)
    typer.echo(f"study '{run.name}' ({engine}) in {where}; MLflow: {redact(tracking_uri)}")
    anchors = min(len(run.anchors), trials) - 1
    typer.echo(
        f"space {space}; {trials} trials x {epochs} epochs; trial 0 is the full-image baseline"
        + (f", then each kind's conventional setting ({anchors})" if anchors > 0 else "")
    )
    from search.ops.signals import handled

    with handled():
        if workers > 1:  # stores, study, parent run and anchors exist: the workers only join
            from search.ops.workers import start_workers, wait_workers

            wait_workers(start_workers(run, workers, trials, typer.echo))
            run.options = dataclasses.replace(run.options, trials=0)  # confirm and close
        confirmation = run.run()
    from search.results.report import print_confirmation, print_leaderboard
    from search.study.selection import best_record

    records = run.records.search_records()
    print_leaderboard(records)
    if confirmation is not None:
        print_confirmation(confirmation)
    typer.echo(f"done in {time.monotonic() - started:.0f}s")
    typer.echo(f"export the winner:  cropsearch export --study {run.name} -o best_policy.yaml")
    model = run.tracker.client.get_run(run.parent_id).data.tags.get("winner_model")
    if model is not None:
        typer.echo(f"winner model:       mlflow.keras.load_model({model!r})")
    typer.echo("browse the runs:    cropsearch ui")

    if best_record(records) is None:
        raise typer.Exit(1)


@app.command("status")
def status_command(
    study: Annotated[str, typer.Option(help="The study to check.")],
    storage: SharedStorageOption = DEFAULT_STORAGE,
    tracking_uri: SharedTrackingOption = DEFAULT_TRACKING,
) -> None:
    """Trials by state and engine; exit 1 when Optuna and MLflow disagree about them."""
    import optuna
    from mlflow.tracking import MlflowClient

    from search.ops.status import study_status
    from search.ops.uris import sqlite_path

    _check_stores(study, storage, tracking_uri)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    loaded = _load_study(study, storage)
    tracking_file = sqlite_path(tracking_uri)
    if tracking_file is not None and not tracking_file.exists():
        raise UserError(f"no MLflow store at {clip(str(tracking_file))} (pass --tracking-uri)")
    status = study_status(loaded, MlflowClient(tracking_uri))
    for line in status.lines():
        typer.echo(line)
    if not status.agree:
        raise typer.Exit(1)


@app.command("worker")
def worker_command(
    study: Annotated[str, typer.Option(help="The study to join (started by cropsearch search).")],
    storage: SharedStorageOption,
    tracking_uri: SharedTrackingOption,
    trials: Annotated[int, typer.Option(min=1, help="Trials this worker runs.")] = 10,
    total: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    threads: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    keep_open: Annotated[bool, typer.Option("--keep-open", hidden=True)] = False,
    verbose: VerboseOption = False,
) -> None:
    """Join a running study from this or another machine: data spec, space and training
    settings come from the study; trials and runs go to the same stores."""
    from search.engines.common import StudyError
    from search.ops.signals import handled
    from search.ops.workers import WorkerError, join_study, run_worker, set_threads

    _check_stores(study, storage, tracking_uri)
    _quiet_tensorflow(verbose)
    if threads is not None:
        set_threads(threads)
    try:
        run = join_study(study, storage, tracking_uri, total or trials, typer.echo)
    except (WorkerError, StudyError) as error:
        raise UserError(str(error)) from None
    with handled():
        run_worker(run, total, close=not keep_open)


@app.command("confirm")
def confirm_command(
    study: Annotated[str, typer.Option(help="The study to confirm.")],
    data: Annotated[
        str | None, typer.Option(help="Dataset spec [default: the study's own].")
    ] = None,
    top: TopOption = 3,
    repeats: RepeatsOption = 3,
    seed: Annotated[
        int | None,
        typer.Option(
            min=SEEDS[0], max=SEEDS[1], help="Seed of the confirmation [default: the study's]."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(min=EPOCHS[0], max=EPOCHS[1], help="Epochs per run [default: the study's]."),
    ] = None,
    storage: StorageOption = DEFAULT_STORAGE,
    tracking_uri: Annotated[str, typer.Option(help="MLflow tracking URI.")] = DEFAULT_TRACKING,
    verbose: VerboseOption = False,
) -> None:
    """Re-train a study's top policies and its baseline over seeds; finished repeats are
    reused, so running it again resumes (or just reprints)."""
    from search.data import load_dataset
    from search.engines.optuna_records import OptunaRecords, param_importances, study_attrs
    from search.results.tracking import Tracker
    from search.results.views import log_study_views
    from search.study.confirm.stage import ConfirmPlan
    from search.study.confirm.stage import confirm as run_confirmation

    _check_stores(study, None, tracking_uri)
    tuned = _keras_tuner_study(study, storage)
    records: Any
    if tuned is not None:  # a keras-tuner study: its records beside its state
        attrs, records, importances = tuned.attrs(), tuned, {}
        provenance = {k: v for k, v in attrs.items() if not k.startswith("confirm")}
    else:
        loaded = _load_study(study, storage)
        attrs, records = loaded.user_attrs, OptunaRecords(loaded)
        importances, provenance = param_importances(loaded), study_attrs(loaded)
    spec = data or attrs.get("data")
    if spec is None:
        raise UserError(f"study '{study}' does not record its data; pass --data")
    _quiet_tensorflow(verbose)
    dataset = load_dataset(spec)
    if attrs.get("data_fingerprint") not in (None, dataset.fingerprint):
        raise UserError(
            f"--data '{spec}' is not the data study '{study}' ran on "
            f"(fingerprint {dataset.fingerprint}, study {attrs.get('data_fingerprint')})"
        )
    if not any(r.state == "complete" for r in records.search_records()):
        raise UserError(f"study '{study}' has no completed trial to confirm")
    tracker = Tracker(tracking_uri, study)
    parent_id = tracker.start_parent(study, {}, attrs.get("mlflow_parent_run_id"))
    plan = ConfirmPlan(
        top,
        repeats,
        int(attrs.get("seed", 0)) if seed is None else seed,
        int(attrs.get("epochs", 4)) if epochs is None else epochs,
    )
    from search.ops.signals import handled

    confirmation = None
    try:
        with handled():
            confirmation = run_confirmation(
                records, dataset, tracker, parent_id, plan, None, echo=typer.echo
            )
    finally:
        log_study_views(
            tracker,
            parent_id,
            records.search_records(),
            dataset,
            importances,
            confirmation or records.confirmation(),
            provenance,
            final=records.confirm_records(),
        )
        tracker.end_run(parent_id, "complete")
    from search.results.report import print_confirmation

    print_confirmation(confirmation)


def _check_engine(study: str, storage: str, engine: str) -> None:
    """Refuse to resume a study with the other engine (they would share one MLflow
    experiment)."""
    from search.ops.uris import sqlite_path

    tuned = _keras_tuner_study(study, storage) is not None
    path = sqlite_path(storage)
    in_optuna = False
    if path is None or path.exists():
        import optuna

        from search.ops.stores import created_once

        with created_once(storage):  # opening a fresh database creates its tables: once
            in_optuna = study in optuna.get_all_study_names(storage)
    other = "keras-tuner" if tuned and engine == "optuna" else None
    other = other or ("optuna" if in_optuna and engine == "keras-tuner" else None)
    if other is not None:
        raise UserError(
            f"study '{study}' was run with --engine {other}; resume it with that engine or "
            "start a new --study"
        )


def _check_model(spec: str, space: Space, dataset: Dataset) -> None:
    """Build ``--model`` once for the baseline policy's input: a model that cannot be found
    or does not fit is one line before any trial."""
    from search.space import split_values
    from search.training.model import ModelError, build_network, hyperparameters

    policy, config = split_values(space.baseline(), TrainConfig(model=spec))
    try:
        build_network(spec, (*policy.size, 3), dataset.n_classes, hyperparameters(config))
    except ModelError as error:
        raise UserError(str(error)) from None


def _default_space(name: str = DEFAULT_SPACE) -> Path:
    """``name`` (``spaces/default.yaml``) in the working directory, else beside the package."""
    local = Path(name)
    return local if local.exists() else Path(__file__).resolve().parents[1] / name


def _check_kinds(space: Space, dataset: Dataset, data: str) -> None:
    """Refuse a space that can produce object kinds when the data has no boxes."""
    needing = space.object_kinds()
    if needing and not dataset.has_boxes:
        usable = ", ".join(kind for kind in KINDS if kind not in OBJECT_KINDS)
        raise UserError(
            f"--data '{data}' has no boxes, but {space.source} can sample {', '.join(needing)}; "
            f"box-free data can use {usable}: --space {BOX_FREE_SPACE} (the default for it)"
        )


def _keras_tuner_study(name: str | None, storage: str) -> KerasTunerRecords | None:
    """The keras-tuner study ``name`` beside ``storage``; without a name, the latest
    keras-tuner study when it is newer than the Optuna storage (else None: use Optuna's)."""
    from search.engines.keras_tuner_records import (
        KerasTunerRecords,
        keras_tuner_root,
        keras_tuner_studies,
    )
    from search.ops.uris import sqlite_path

    if name is not None:
        found = KerasTunerRecords(keras_tuner_root(storage), name)
        return found if found.exists() else None
    studies = keras_tuner_studies(storage)
    if not studies:
        return None
    path = sqlite_path(storage)
    if path is not None and path.exists() and path.stat().st_mtime > studies[-1].changed():
        return None
    return studies[-1]


def _load_study(name: str | None, storage: str) -> optuna.Study:
    import optuna

    from search.ops.uris import check_storage_uri, sqlite_path

    path = sqlite_path(storage)
    if path is not None and not path.exists():
        raise UserError(
            f"no study storage at {clip(str(path))} (run 'cropsearch search' first or pass "
            "--storage)"
        )
    check_storage_uri(storage)
    names = [
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    ]
    if not names:
        raise UserError(f"no studies in {redact(storage)}")
    if name is None:
        return optuna.load_study(study_name=names[-1], storage=storage)
    if name not in names:
        raise UserError(
            f"no study '{clip(name)}' in {redact(storage)} (known: {', '.join(names[-5:])})"
        )
    return optuna.load_study(study_name=name, storage=storage)


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Policy file to write.")] = Path(
        "best_policy.yaml"
    ),
    study: Annotated[
        str | None, typer.Option(help="Study name (default: the latest study).")
    ] = None,
    trial: Annotated[
        int | None, typer.Option(min=0, help="Export this trial instead of the study's answer.")
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(help="Export the trial of this MLflow run (a trial or confirmation run)."),
    ] = None,
    storage: StorageOption = DEFAULT_STORAGE,
    tracking_uri: Annotated[
        str, typer.Option(help="MLflow tracking URI (read with --run-id).")
    ] = DEFAULT_TRACKING,
    file_format: Annotated[
        Literal["yaml", "json"] | None,
        typer.Option(
            "--format",
            help="File format [default: json for a .json output, else yaml].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the study's answer (the confirmed winner, else the best screening trial), or the
    trial given by --trial or --run-id, with provenance (and the confirmation's numbers when it
    is the confirmed winner) as a versioned YAML or JSON file."""
    from search.engines.optuna_records import OptunaRecords, study_attrs
    from search.results.export import policy_document, write_policy_file
    from search.study.selection import chosen_record

    if trial is not None and run_id is not None:
        raise UserError("give --trial or --run-id, not both")
    if run_id is not None:
        study = _study_of_run(run_id, tracking_uri, study)
    tuned = _keras_tuner_study(study, storage)
    records: Any
    if tuned is not None:
        records, name = tuned, tuned.study
        attrs = {k: v for k, v in tuned.attrs().items() if not k.startswith("confirm")}
    else:
        loaded = _load_study(study, storage)
        records, name, attrs = OptunaRecords(loaded), loaded.study_name, study_attrs(loaded)
    confirmation = records.confirmation()
    searched = records.search_records()
    if run_id is not None:
        trial = _trial_of_run(run_id, name, [*searched, *records.confirm_records()])
    if trial is None:
        chosen = chosen_record(searched, confirmation)
        if chosen is None:
            raise UserError(f"study '{name}' has no completed trial yet")
    else:
        chosen = next((r for r in searched if r.number == trial), None)
        if chosen is None or chosen.state != "complete":
            state = "does not exist" if chosen is None else f"is {chosen.state}"
            raise UserError(f"trial {trial} of study '{name}' {state}; export a complete trial")
        if confirmation is not None and confirmation.winner != chosen.number:
            confirmation = None  # the confirmation's numbers describe its winner only
    document = policy_document(chosen, attrs, confirmation)
    try:
        path = write_policy_file(document, output, file_format)
    except OSError as error:
        raise UserError(f"cannot write {clip(str(output))}: {error.strerror}") from None
    if trial is not None:
        how = "as asked" + ("; the confirmed winner" if confirmation is not None else "")
    else:
        how = "confirmed winner" if confirmation is not None else "best single screening run"
    typer.echo(
        f"wrote {path}: trial {chosen.number} of study '{name}' ({how}; "
        f"val_accuracy {chosen.val_accuracy:.4f})"
    )
    if confirmation is not None:
        typer.echo(f"verdict: {confirmation.verdict}")


def _study_of_run(run_id: str, tracking_uri: str, study: str | None) -> str:
    """The study an MLflow run of cropsearch belongs to (its ``study`` tag)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from search.ops.uris import check_tracking_uri

    check_tracking_uri(tracking_uri)
    try:
        tags = MlflowClient(tracking_uri).get_run(run_id).data.tags
    except MlflowException:
        raise UserError(f"no run '{clip(run_id)}' in {redact(tracking_uri)}") from None
    found = tags.get("study")
    if found is None:
        raise UserError(f"run '{clip(run_id)}' is not a cropsearch trial run (no study tag)")
    if study is not None and study != found:
        raise UserError(f"run '{clip(run_id)}' belongs to study '{found}', not '{clip(study)}'")
    return found


def _trial_of_run(run_id: str, study: str, records: Sequence[TrialRecord]) -> int:
    """The trial number of the record that ``run_id`` logged."""
    found = next((r for r in records if r.run_id == run_id), None)
    if found is None:
        raise UserError(f"run '{clip(run_id)}' is not a trial of study '{study}'")
    return found.number


@app.command()
def ui(
    tracking_uri: Annotated[str, typer.Option(help="MLflow backend store URI.")] = DEFAULT_TRACKING,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it local.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 5000,
    study: Annotated[str | None, typer.Option(help="Print the runs link of this study.")] = None,
) -> None:
    """Start the MLflow UI on the search's store and print its URL (Ctrl-C stops it)."""
    from search.results.tracking import artifact_root, sqlite_path

    path = sqlite_path(tracking_uri)
    if path is not None and not path.exists():
        raise UserError(f"no MLflow store at {clip(str(path))} (run 'cropsearch search' first)")
    _check_stores(None, None, tracking_uri)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    root = artifact_root(tracking_uri)
    if root is not None:
        command += ["--default-artifact-root", root]
    url = f"http://{host}:{port}"
    link = url
    if study is not None or path is not None:
        from mlflow.tracking import MlflowClient

        experiments = MlflowClient(tracking_uri).search_experiments(order_by=["creation_time DESC"])
        chosen = [e for e in experiments if study is None or e.name == study]
        if chosen:
            # The UI takes its mode from this query inside the hash route (else from the
            # browser's storage); without it a study opens in the GenAI overview.
            query = "workflowType=machine_learning"
            link = f"{url}/#/experiments/{chosen[0].experiment_id}/runs?{query}"
    typer.echo(f"MLflow UI for {redact(tracking_uri)} at {url}")
    typer.echo(f"runs of the latest study: {link}")
    sys.stdout.flush()
    # Become the server, so Ctrl-C and SIGTERM reach it directly.
    os.execv(sys.executable, command)


@app.command()
def data(
    spec: Annotated[str, typer.Argument(metavar="SPEC", help=DATA_SPEC_HELP)],
    preview: Annotated[
        Path | None, typer.Option(help="Also draw samples with their boxes into this PNG.")
    ] = None,
) -> None:
    """Load a dataset and print its report: classes per split, box sizes, skipped samples."""
    from search.data import load_dataset
    from search.data.report import format_report, preview_grid

    _quiet_tensorflow()  # tfrecord:... reads with TensorFlow
    dataset = load_dataset(spec)
    typer.echo(format_report(dataset), nl=False)
    if preview is not None:
        try:
            typer.echo(f"preview: {preview_grid(dataset, preview)}")
        except OSError as error:
            raise UserError(f"cannot write the preview {preview}: {error}") from None


@app.command("apply")
def apply_command(
    policy: Annotated[
        Path, typer.Option(help="Policy file, as 'cropsearch export' writes it (YAML or JSON).")
    ],
    out: Annotated[Path, typer.Option(help="New or empty folder for the crops and manifest.")],
    data: Annotated[str, typer.Option(help=DATA_SPEC_HELP)] = "shapes",
    split: Annotated[Literal["train", "val", "test"], typer.Option(help="Split to crop.")] = "val",
    train: Annotated[
        bool, typer.Option("--train", help="Train-mode (random) windows instead of eval.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the train-mode randomness.")] = 0,
    epoch: Annotated[int, typer.Option(min=0, help="Epoch of the train-mode randomness.")] = 0,
) -> None:
    """Crop a dataset split with a policy file: PNGs in OUT/<class>/ and OUT/manifest.csv
    (source, label, box, window). Samples the data loader rejects are skipped and counted."""
    from search.data import load_dataset
    from search.results.apply import ApplyError, skipped_summary, write_crops
    from search.results.export import load_policy

    chosen = load_policy(policy)
    _quiet_tensorflow()
    dataset = load_dataset(data)
    typer.echo(f"data {data}: {skipped_summary(dataset.report)}")
    mode = f"train mode, seed {seed}, epoch {epoch}" if train else "eval mode"
    typer.echo(
        f"policy {chosen.label()} ({mode}) on {len(getattr(dataset, split))} {split} samples"
    )
    try:
        applied = write_crops(chosen, dataset, out, split, train, seed, epoch)
    except ApplyError as error:
        raise UserError(str(error)) from None
    typer.echo(f"wrote {applied.written} crops to {applied.folder}; manifest {applied.manifest}")


@app.command()
def preview(
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy file, as 'cropsearch export' writes it (or a field mapping)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Set a policy field, over --policy (repeatable; YAML values: 0.3, [48, 64]).",
        ),
    ] = None,
    data: Annotated[str, typer.Option(help=DATA_SPEC_HELP)] = "shapes",
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path(
        "crop_preview.png"
    ),
    train: Annotated[bool, typer.Option("--train", help="Only train-mode crops.")] = False,
    eval_: Annotated[bool, typer.Option("--eval", help="Only eval-mode crops.")] = False,
    n: Annotated[int, typer.Option("--n", min=1, max=64, help="Validation samples shown.")] = 16,
    seed: Annotated[
        int, typer.Option(min=SEEDS[0], max=SEEDS[1], help="Seed of the train-mode randomness.")
    ] = 0,
    verbose: VerboseOption = False,
) -> None:
    """Draw a policy's crops of the first validation samples into a PNG, without training.

    Fields: defaults, then --policy, then each --set. Neither --train nor --eval: both modes.
    """
    from search.crop.policy import CropPolicy
    from search.data import load_dataset
    from search.results.export import load_policy
    from search.safe_yaml import load_yaml_text

    fields = load_policy(policy).to_dict() if policy is not None else {}
    for item in set_ or []:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise UserError(f"--set '{clip(item)}': expected FIELD=VALUE, e.g. --set context=0.3")
        value = load_yaml_text(text, f"--set '{item}'")
        try:
            CropPolicy(**{name: value})  # check this field alone, to name the flag at fault
        except PolicyError as error:
            raise PolicyError(f"--set '{clip(item)}': {error}") from None
        fields[name] = value
    chosen = CropPolicy.from_dict(fields)
    shown: tuple[str, ...] = ("train", "eval")
    if train != eval_:
        shown = ("train",) if train else ("eval",)

    _quiet_tensorflow(verbose)
    from search.results.figures import crop_grid, save

    dataset = load_dataset(data)
    if len(dataset.val) == 0:
        raise UserError(f"--data '{data}' has no validation samples to show")
    if chosen.kind in OBJECT_KINDS and not dataset.has_boxes:
        usable = ", ".join(kind for kind in KINDS if kind not in OBJECT_KINDS)
        raise UserError(f"--data '{data}' has no boxes for kind {chosen.kind}; use {usable}")
    samples = dataset.val.take(slice(0, n))
    figure = crop_grid(chosen, samples, dataset.class_names, seed=seed, modes=shown)
    try:
        path = save(figure, output)
    except OSError as error:
        raise UserError(f"cannot write {output}: {error}") from None
    typer.echo(
        f"wrote {path}: {' and '.join(shown)} crops of {len(samples)} validation samples "
        f"of {data}, policy {chosen.label()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes print one line on stderr and exit 2, with no traceback."""
    from search.ops.signals import forget, received

    forget()  # a signal an earlier command received in this process is not this one's
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="cropsearch", standalone_mode=False)
        interrupt = received()  # Typer turns an interrupt into a plain exit code 130
        if interrupt is not None:
            raise interrupt
    except typer.TyperException as error:  # Typer's click errors: bad flag, bad value, ...
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message(), err=True)
            return 2
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {_one_line(error.format_message())}{hint}", err=True)
        return error.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except _USER_ERRORS as error:
        typer.echo(f"error: {_one_line(str(error))}", err=True)
        return 2
    except Interrupted as error:
        typer.echo(f"interrupted ({error}): the running trial is marked failed", err=True)
        return error.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception:  # a bug: its traceback, with any URI's secrets redacted
        import traceback

        sys.stderr.write(redact(traceback.format_exc()))
        return 1
    return result if isinstance(result, int) else 0


def _one_line(message: str) -> str:
    """A user-facing message as one bounded line, secrets redacted."""
    return clip(redact(message), MESSAGE_CHARS)


if __name__ == "__main__":
    sys.exit(main())
