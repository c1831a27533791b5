"""The ``cropsearch`` command line: each command parses its options, calls the one function
that does the work, and prints. Options and their help live in :mod:`search.cli_options`,
defaults in :mod:`search.settings`."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from search import cli_options as opt
from search.cli_errors import UserError, exit_code
from search.data import load_dataset
from search.data.report import format_report, preview_grid
from search.engines.common import SearchOptions, check_search_flags
from search.ops.exit import exit_now
from search.ops.quiet import quiet_store_noise, quiet_tensorflow
from search.ops.signals import forget, handled, received
from search.ops.uris import check_stores, redact, sqlite_path
from search.results.apply import (
    policy_with,
    skipped_summary,
    write_crops,
    write_preview,
)
from search.results.export import (
    export_study,
    load_policy,
    policy_line,
)
from search.results.report import (
    next_steps,
    print_confirmation,
    print_leaderboard,
)
from search.safe_yaml import clip
from search.settings import (
    DEFAULT_DATA,
    DEFAULT_ENGINE,
    DEFAULT_EPOCHS,
    DEFAULT_POLICY_FILE,
    DEFAULT_PRUNER,
    DEFAULT_REPEATS,
    DEFAULT_SEED,
    DEFAULT_STORAGE,
    DEFAULT_TOP,
    DEFAULT_TRACKING,
    DEFAULT_TRIALS,
)
from search.study.confirm.model import needs_exact_boxes
from search.study.selection import best_record

app = typer.Typer(
    help="Search the crop policy for a compact CNN: Optuna trials, tracked in MLflow.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def search(
    data: opt.DataOption = DEFAULT_DATA,
    space: opt.SpaceOption = None,
    trials: opt.TrialsOption = DEFAULT_TRIALS,
    timeout: opt.TimeoutOption = None,
    epochs: opt.EpochsOption = DEFAULT_EPOCHS,
    seed: opt.SeedOption = DEFAULT_SEED,
    screen: opt.ScreenOption = None,
    screen_epochs: opt.ScreenEpochsOption = None,
    confirm: opt.ConfirmOption = True,
    top: opt.TopOption = DEFAULT_TOP,
    repeats: opt.RepeatsOption = DEFAULT_REPEATS,
    study: opt.StudyOption = None,
    storage: opt.StorageOption = DEFAULT_STORAGE,
    tracking_uri: opt.TrackingOption = DEFAULT_TRACKING,
    engine: opt.EngineOption = DEFAULT_ENGINE,
    algorithm: opt.AlgorithmOption = None,
    pruner: opt.PrunerOption = None,
    model: opt.ModelOption = None,
    confirm_model: opt.ConfirmModelOption = None,
    workers: opt.WorkersOption = 1,
    boxes: opt.BoxesOption = None,
    processes: opt.ProcessesOption = None,
    verbose: opt.VerboseOption = False,
) -> None:
    """Screen crop policies, confirm the best over seeds, and print the results."""
    started = time.monotonic()  # a --timeout counts from here
    check_stores(study, storage, tracking_uri)
    check_search_flags(engine, algorithm, pruner, boxes, workers, timeout)
    from search.engines.run import run_search  # Optuna, MLflow: flags are good

    options = SearchOptions(
        trials, timeout, epochs, seed, study, storage, tracking_uri, screen, confirm, top,
        repeats, model=model, algorithm=algorithm, pruner=pruner or DEFAULT_PRUNER,
        processes=processes, screen_epochs=screen_epochs,
    )  # fmt: skip
    outcome = run_search(
        options, data, space, engine, workers, verbose, typer.echo, boxes, confirm_model, started
    )
    print_leaderboard(outcome.records, outcome.run.options.boxes)
    if outcome.confirmation is not None:
        print_confirmation(outcome.confirmation)
        if confirm_model is not None:
            confirm_command(outcome.run.name, storage=storage, tracking_uri=tracking_uri, top=top,
                            repeats=repeats, model=confirm_model)  # fmt: skip
        if needs_exact_boxes(outcome.confirmation):
            typer.echo(
                "choose for detector-like boxes instead:  cropsearch search "
                f"--data {shlex.quote(data)} --boxes iou:0.75"
            )
    used = time.monotonic() - outcome.started
    typer.echo(f"done in {used:.0f}s" + (f" of the {timeout:.0f}s budget" if timeout else ""))
    for line in next_steps(outcome.run.name, outcome.run.winner_model()):
        typer.echo(line)
    if best_record(outcome.records) is None:
        raise typer.Exit(1)


@app.command("status")
def status_command(
    study: opt.LatestStudyOption = None,
    all_studies: opt.AllStudiesOption = False,
    storage: opt.SharedStorageOption = DEFAULT_STORAGE,
    tracking_uri: opt.SharedTrackingOption = DEFAULT_TRACKING,
) -> None:
    """Trials by state and engine; exit 1 when Optuna and MLflow disagree about them. With
    --all: every study in the store with its trial counts."""
    from search.ops.status import check_status, study_lines  # Optuna and MLflow

    check_stores(study, storage, tracking_uri)
    if all_studies:
        if study is not None:
            raise UserError("give --study or --all, not both")
        for line in study_lines(storage):
            typer.echo(line)
        return
    status = check_status(study, storage, tracking_uri)
    for line in status.lines():
        typer.echo(line)
    if not status.agree:
        raise typer.Exit(1)


@app.command("worker")
def worker_command(
    study: Annotated[str, typer.Option(help="The study to join (started by cropsearch search).")],
    storage: opt.SharedStorageOption,
    tracking_uri: opt.SharedTrackingOption,
    trials: Annotated[int, typer.Option(min=1, help="Trials this worker runs.")] = DEFAULT_TRIALS,
    total: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    threads: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    keep_open: Annotated[bool, typer.Option("--keep-open", hidden=True)] = False,
    verbose: opt.VerboseOption = False,
) -> None:
    """Join a running study from this or another machine: data spec, space and training
    settings come from the study; trials and runs go to the same stores."""
    from search.ops.workers import join_study, run_worker, set_threads  # Optuna and MLflow

    check_stores(study, storage, tracking_uri)
    quiet_tensorflow(verbose)
    if threads is not None:
        set_threads(threads)
    run = join_study(study, storage, tracking_uri, total or trials, typer.echo)
    with handled():
        run_worker(run, total, close=not keep_open)


@app.command("confirm")
def confirm_command(
    study: Annotated[str, typer.Option(help="The study to confirm.")],
    data: opt.StudyDataOption = None,
    top: opt.TopOption = DEFAULT_TOP,
    repeats: opt.RepeatsOption = DEFAULT_REPEATS,
    seed: opt.StudySeedOption = None,
    epochs: opt.StudyEpochsOption = None,
    storage: opt.StorageOption = DEFAULT_STORAGE,
    tracking_uri: opt.TrackingOption = DEFAULT_TRACKING,
    boxes: opt.BoxesOption = None,
    processes: opt.ProcessesOption = None,
    model: opt.ConfirmOnModelOption = None,
    size: opt.SizeOption = None,
    verbose: opt.VerboseOption = False,
) -> None:
    """Re-train a study's top policies and its baseline over seeds; finished repeats are
    reused, so running it again resumes (or just reprints). With --model or --size, on that
    network or at that size, kept as a separate confirmation and compared with the study's."""
    from search.engines.run import confirm_study, print_network_comparison  # Optuna, MLflow

    check_stores(study, None, tracking_uri)
    cut = opt.parse_size(size)
    confirmation = confirm_study(
        study, data, top, repeats, seed, epochs,
        storage=storage, tracking_uri=tracking_uri, verbose=verbose, echo=typer.echo,
        boxes=boxes, processes=processes, model=model, size=cut,
    )  # fmt: skip
    print_confirmation(confirmation)
    if confirmation.network:
        print_network_comparison(study, storage, typer.echo)


@app.command()
def export(
    output: opt.PolicyOutputOption = Path(DEFAULT_POLICY_FILE),
    study: opt.LatestStudyOption = None,
    trial: opt.TrialOption = None,
    run_id: opt.RunIdOption = None,
    storage: opt.StorageOption = DEFAULT_STORAGE,
    tracking_uri: opt.RunTrackingOption = DEFAULT_TRACKING,
    file_format: opt.FormatOption = None,
) -> None:
    """Write the study's answer (the confirmed winner, else the best screening trial), or the
    trial given by --trial or --run-id, with provenance (and the confirmation's numbers when it
    is the confirmed winner) as a versioned YAML or JSON file."""
    from search.engines.lookup import find_study, study_of_run  # Optuna and MLflow

    if trial is not None and run_id is not None:
        raise UserError("give --trial or --run-id, not both")
    if run_id is not None:
        study = study_of_run(run_id, tracking_uri, study)
    exported = export_study(find_study(study, storage), output, file_format, trial, run_id)
    typer.echo(
        f"wrote {exported.path}: trial {exported.record.number} of study '{exported.study}' "
        f"({exported.how}; val_accuracy {exported.record.val_accuracy:.4f})"
    )
    if exported.confirmation is not None:
        typer.echo(f"verdict: {exported.confirmation.verdict}")


@app.command()
def ui(
    tracking_uri: Annotated[str, typer.Option(help="MLflow backend store URI.")] = DEFAULT_TRACKING,
    host: opt.HostOption = "127.0.0.1",
    port: opt.PortOption = 5000,
    study: opt.ServedStudyOption = None,
    storage: opt.StorageOption = DEFAULT_STORAGE,
) -> None:
    """Start the MLflow UI on the search's store and print its URL and the runs link of the
    study (Ctrl-C stops it)."""
    from search.engines.lookup import latest_study_if_any  # Optuna
    from search.results.tracking import runs_link, ui_command  # MLflow

    path = sqlite_path(tracking_uri)
    if path is not None and not path.exists():
        raise UserError(f"no MLflow store at {clip(str(path))} (run 'cropsearch search' first)")
    check_stores(study, None, tracking_uri)
    study = study or latest_study_if_any(storage)
    command = ui_command(tracking_uri, host, port)
    url = f"http://{host}:{port}"
    typer.echo(f"MLflow UI for {redact(tracking_uri)} at {url}")
    if study is not None:
        typer.echo(f"runs of study '{study}': {runs_link(tracking_uri, url, study)}")
    sys.stdout.flush()
    # Become the server, so Ctrl-C and SIGTERM reach it directly.
    os.execv(sys.executable, command)


@app.command()
def dashboard(
    storage: opt.StorageOption = DEFAULT_STORAGE,
    host: opt.HostOption = "127.0.0.1",
    port: opt.PortOption = 8080,
    study: opt.ServedStudyOption = None,
) -> None:
    """Serve optuna-dashboard, a live view of the trials, on the study's storage and print the
    study's page (needs the dashboard extra; Ctrl-C stops it)."""
    from search.engines.lookup import optuna_study  # Optuna
    from search.results.dashboard import dashboard_server  # optuna-dashboard

    check_stores(study, storage, None)
    name = optuna_study(study, storage, "the dashboard").study_name
    server, page = dashboard_server(storage, name, host, port)
    url = f"http://{host}:{port}"
    typer.echo(f"Optuna dashboard for {redact(storage)} at {url}")
    typer.echo(f"study '{name}': {url}{page}")
    sys.stdout.flush()
    with server:
        server.serve_forever()


@app.command()
def data(
    spec: Annotated[str, typer.Argument(metavar="SPEC", help=opt.DATA_SPEC_HELP)],
    preview: opt.DataPreviewOption = None,
) -> None:
    """Load a dataset and print its report: classes per split, box sizes, skipped samples."""
    quiet_tensorflow()  # tfrecord:... reads with TensorFlow
    dataset = load_dataset(spec)
    typer.echo(format_report(dataset), nl=False)
    if preview is not None:
        try:
            typer.echo(f"preview: {preview_grid(dataset, preview)}")
        except OSError as error:
            raise UserError(f"cannot write the preview {preview}: {error}") from None


@app.command("apply")
def apply_command(
    policy: opt.PolicyFileOption,
    out: opt.CropsFolderOption,
    data: opt.DataOption = DEFAULT_DATA,
    split: Annotated[Literal["train", "val", "test"], typer.Option(help="Split to crop.")] = "val",
    train: opt.TrainModeOption = False,
    seed: Annotated[int, typer.Option(help="Seed of the train-mode randomness.")] = DEFAULT_SEED,
    epoch: Annotated[int, typer.Option(min=0, help="Epoch of the train-mode randomness.")] = 0,
) -> None:
    """Crop a dataset split with a policy file: PNGs in OUT/<class>/ and OUT/manifest.csv
    (source, label, box, window). Samples the data loader rejects are skipped and counted."""
    chosen = load_policy(policy)
    quiet_tensorflow()
    dataset = load_dataset(data)
    typer.echo(f"data {data}: {skipped_summary(dataset.report)}")
    mode = f"train mode, seed {seed}, epoch {epoch}" if train else "eval mode"
    typer.echo(
        f"policy {chosen.label()} ({mode}) on {len(getattr(dataset, split))} {split} samples"
    )
    applied = write_crops(chosen, dataset, out, split, train, seed, epoch)
    typer.echo(f"wrote {applied.written} crops to {applied.folder}; manifest {applied.manifest}")


@app.command()
def preview(
    policy: opt.PolicyFieldsOption = None,
    set_: opt.SetOption = None,
    data: opt.DataOption = DEFAULT_DATA,
    output: opt.PreviewOutputOption = Path("crop_preview.png"),
    train: opt.PreviewTrainOption = False,
    eval_: opt.PreviewEvalOption = False,
    n: opt.PreviewCountOption = 16,
    seed: opt.PreviewSeedOption = DEFAULT_SEED,
    verbose: opt.VerboseOption = False,
) -> None:
    """Print the policy (defaults, then --policy, then each --set: every field) and draw its
    crops of the first validation samples into a PNG, without training. Neither --train nor
    --eval: both modes."""
    chosen = policy_with(load_policy(policy).to_dict() if policy is not None else {}, set_ or [])
    typer.echo(f"policy: {policy_line(chosen)}")
    shown: tuple[str, ...] = ("train", "eval")
    if train != eval_:
        shown = ("train",) if train else ("eval",)
    quiet_tensorflow(verbose)
    dataset = load_dataset(data)
    path, count = write_preview(chosen, dataset, data, output, shown, n, seed)
    typer.echo(
        f"wrote {path}: {' and '.join(shown)} crops of {count} validation samples "
        f"of {data}, policy {chosen.label()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes print one line on stderr and exit 2, with no traceback
    (:func:`~search.cli_errors.exit_code`)."""
    forget()  # a signal an earlier command received in this process is not this one's
    quiet_store_noise()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="cropsearch", standalone_mode=False)
        interrupt = received()  # Typer turns an interrupt into a plain exit code 130
        if interrupt is not None:
            raise interrupt
    except (Exception, KeyboardInterrupt) as error:
        return exit_code(error)
    return result if isinstance(result, int) else 0


def run() -> None:
    """The ``cropsearch`` command: :func:`main`, then an exit without TensorFlow's tear-down
    (:func:`~search.ops.exit.exit_now`)."""
    exit_now(main())


if __name__ == "__main__":
    run()
