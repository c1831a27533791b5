"""The ``cropsearch`` command line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search.data import DataError
from search.export import PolicyFileError
from search.policy import PolicyError
from search.space import SpaceError

if TYPE_CHECKING:
    import optuna

app = typer.Typer(
    help="Search the crop policy for a compact CNN: Optuna trials, tracked in MLflow.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DEFAULT_SPACE = "spaces/default.yaml"
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
DEFAULT_TRACKING = "sqlite:///mlruns/mlflow.db"
DATA_SPEC_HELP = "Dataset spec: shapes, mnist:DIR, csv:FILE, voc:DIR or coco:FILE[,key=value...]"

StorageOption = Annotated[str, typer.Option(help="Optuna storage URL (RDB or journal).")]
StudyOption = Annotated[str | None, typer.Option(help="Study name; an existing study is resumed.")]


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""


_USER_ERRORS: tuple[type[Exception], ...] = (
    UserError,
    SpaceError,
    PolicyError,
    PolicyFileError,
    DataError,
)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
        int, typer.Option(min=1, help="Trials to run (including the baseline).")
    ] = 10,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Stop starting trials after this many seconds.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs per trial.")] = 4,
    seed: Annotated[
        int, typer.Option(help="Seed of the sampler and of every trial's training.")
    ] = 0,
    study: StudyOption = None,
    storage: StorageOption = DEFAULT_STORAGE,
    tracking_uri: Annotated[str, typer.Option(help="MLflow tracking URI.")] = DEFAULT_TRACKING,
) -> None:
    """Run a crop-policy search and print its leaderboard."""
    from search.data import load_dataset
    from search.space import Space
    from search.study import Search, SearchOptions, StudyError
    from search.tracking import redact

    started = time.monotonic()
    space = space or _default_space()
    search_space = Space.load(space)
    _quiet_tensorflow()
    typer.echo(f"loading data {data} ...")
    try:
        dataset = load_dataset(data)
        options = SearchOptions(trials, timeout, epochs, seed, study, storage, tracking_uri)
        run = Search(dataset, search_space, options, echo=typer.echo)
    except StudyError as error:
        raise UserError(str(error)) from None
    sizes = ", ".join(f"{k} {len(getattr(dataset, k))}" for k in ("train", "val", "test"))
    typer.echo(
        f"data: {sizes} samples, {dataset.n_classes} classes "
        f"(ready in {time.monotonic() - started:.1f}s; fingerprint {dataset.fingerprint})"
    )
    typer.echo(f"study '{run.name}' in {redact(storage)}; MLflow: {redact(tracking_uri)}")
    typer.echo(
        f"space {space}; {trials} trials x {epochs} epochs; trial 0 is the full-image baseline"
    )
    result = run.run()
    _print_leaderboard(result)
    typer.echo(f"done in {time.monotonic() - started:.0f}s")
    typer.echo(f"export the winner:  cropsearch export --study {run.name} -o best_policy.yaml")
    typer.echo("browse the runs:    cropsearch ui")
    from search.study import best_trial

    if best_trial(result) is None:
        raise typer.Exit(1)


def _default_space() -> Path:
    """``spaces/default.yaml`` of the working directory, else the one beside the package."""
    local = Path(DEFAULT_SPACE)
    return local if local.exists() else Path(__file__).resolve().parents[1] / DEFAULT_SPACE


def _print_leaderboard(study: optuna.Study) -> None:
    from rich.console import Console
    from rich.table import Table

    from search.study import OBJECTIVE, leaderboard, rows_as_table, summary_lines

    table = Table(title="leaderboard (top 5 and the baseline)")
    for column in ("rank", "trial", OBJECTIVE, "test_accuracy", "policy"):
        table.add_column(column)
    for cells in rows_as_table(leaderboard(study)):
        table.add_row(*(str(c) for c in cells))
    console = Console()
    if not console.is_terminal:  # a log file: do not fold policy labels at 80 columns
        console.width = 120
    console.print(table)
    for line in summary_lines(study):
        console.print(line)


def _load_study(name: str | None, storage: str) -> optuna.Study:
    import optuna

    from search.tracking import redact, sqlite_path

    path = sqlite_path(storage)
    if path is not None and not path.exists():
        raise UserError(
            f"no study storage at {path} (run 'cropsearch search' first or pass --storage)"
        )
    names = [
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    ]
    if not names:
        raise UserError(f"no studies in {redact(storage)}")
    if name is None:
        return optuna.load_study(study_name=names[-1], storage=storage)
    if name not in names:
        raise UserError(f"no study '{name}' in {redact(storage)} (known: {', '.join(names[-5:])})")
    return optuna.load_study(study_name=name, storage=storage)


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Policy file to write.")] = Path(
        "best_policy.yaml"
    ),
    study: Annotated[
        str | None, typer.Option(help="Study name (default: the latest study).")
    ] = None,
    storage: StorageOption = DEFAULT_STORAGE,
) -> None:
    """Write the best trial's policy, with provenance, as a versioned YAML file."""
    from search.export import policy_document, write_policy_file
    from search.study import best_trial

    loaded = _load_study(study, storage)
    best = best_trial(loaded)
    if best is None:
        raise UserError(f"study '{loaded.study_name}' has no completed trial yet")
    path = write_policy_file(policy_document(loaded, best), output)
    typer.echo(
        f"wrote {path}: trial {best.number} of study '{loaded.study_name}' "
        f"(val_accuracy {best.value:.4f})"
    )


@app.command()
def ui(
    tracking_uri: Annotated[str, typer.Option(help="MLflow backend store URI.")] = DEFAULT_TRACKING,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it local.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    study: Annotated[str | None, typer.Option(help="Print the runs link of this study.")] = None,
) -> None:
    """Start the MLflow UI on the search's store and print its URL (Ctrl-C stops it)."""
    from search.tracking import artifact_root, redact, sqlite_path

    path = sqlite_path(tracking_uri)
    if path is not None and not path.exists():
        raise UserError(f"no MLflow store at {path} (run 'cropsearch search' first)")
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
            link = f"{url}/#/experiments/{chosen[0].experiment_id}/runs"
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

    dataset = load_dataset(spec)
    typer.echo(format_report(dataset), nl=False)
    if preview is not None:
        try:
            typer.echo(f"preview: {preview_grid(dataset, preview)}")
        except OSError as error:
            raise UserError(f"cannot write the preview {preview}: {error}") from None


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
    seed: Annotated[int, typer.Option(help="Seed of the train-mode randomness.")] = 0,
) -> None:
    """Draw a policy's crops of the first validation samples into a PNG, without training.

    Fields: defaults, then --policy, then each --set. Neither --train nor --eval: both modes.
    """
    import yaml

    from search.data import load_dataset
    from search.export import load_policy
    from search.policy import CropPolicy

    fields = load_policy(policy).to_dict() if policy is not None else {}
    for item in set_ or []:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise UserError(f"--set '{item}': expected FIELD=VALUE, e.g. --set context=0.3")
        try:
            value = yaml.safe_load(text)
            CropPolicy(**{name: value})  # check this field alone, to name the flag at fault
        except yaml.YAMLError:
            raise UserError(f"--set '{item}': the value is not valid YAML") from None
        except PolicyError as error:
            raise PolicyError(f"--set '{item}': {error}") from None
        fields[name] = value
    chosen = CropPolicy.from_dict(fields)
    shown: tuple[str, ...] = ("train", "eval")
    if train != eval_:
        shown = ("train",) if train else ("eval",)

    _quiet_tensorflow()
    from search.figures import crop_grid, save

    dataset = load_dataset(data)
    if len(dataset.val) == 0:
        raise UserError(f"--data '{data}' has no validation samples to show")
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
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="cropsearch", standalone_mode=False)
    except typer.TyperException as error:  # Typer's click errors: bad flag, bad value, ...
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message(), err=True)
            return 2
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {error.format_message()}{hint}", err=True)
        return error.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except _USER_ERRORS as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
