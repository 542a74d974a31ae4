"""The ``bench`` command: thin click wrappers; the work happens in the modules they call."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from harness import __version__
from harness.cli.help_texts import COMPARE_EXIT_CODES
from harness.cli.params import DURATION, PERCENT, RATE, SLO, THRESHOLD_PCT
from harness.errors import HarnessError, ScenarioError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def cli() -> None:
    """Benchmark Spark Structured Streaming and Flink on the same Kafka windowed count.

    Typical use: `bench run scenarios/smoke.yaml`, then read results/<run>/report.md.
    """


@cli.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
def validate(scenario_file: Path) -> None:
    """Check SCENARIO_FILE and print it fully resolved (defaults filled in), or every error, one per line.

    An engine given as `module:Class` is Python code: its module is imported to check its settings against the
    engine's own model (as `bench run` will import and run it); the output names each module imported."""
    from harness.scenario import load_scenario

    plugins = _plugin_modules(scenario_file)
    for module in plugins:
        click.echo(f"# importing {module} (a module:Class engine) to check its settings", err=True)
    scenario = load_scenario(scenario_file)
    click.echo(f"# {scenario_file}: valid")
    click.echo(yaml.safe_dump(scenario.dump(), sort_keys=False, allow_unicode=True).rstrip())


def _plugin_modules(scenario_file: Path) -> list[str]:
    """The modules of the scenario's ``module:Class`` engines, read from the file before it is validated (empty
    when it cannot be read: validation then says why)."""
    try:
        data = yaml.safe_load(Path(scenario_file).read_text(encoding="utf-8"))
        entries = data.get("engines") or []
        names = [e if isinstance(e, str) else e.get("engine") for e in entries]
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    return list(dict.fromkeys(n.partition(":")[0] for n in names if isinstance(n, str) and ":" in n))


@cli.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--engines", "engine_names", default=None,
              help="Comma-separated engines (labels or registered names) to run instead of the scenario's list.")
@click.option("--repetitions", type=click.IntRange(min=1), default=None, help="Override repetitions.")
@click.option("--duration", type=DURATION, default=None, help="Override duration (whole load period), e.g. 2m.")
@click.option("--rate", type=RATE, default=None, help="Override load.rate, e.g. 50k.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Directory under which the run directory is created.")
@click.option("--no-report", is_flag=True, help="Skip writing report.md at the end.")
@click.option("--isolation", default=None, metavar="LOAD:ENGINE|off",
              help="Override isolation: CPUs of the load path and of the engine, e.g. 0:1; off for none.")
def run(scenario_file: Path, engine_names: str | None, repetitions: int | None, duration: int | None,
        rate: float | None, out: Path, no_report: bool, isolation: str | None) -> None:
    """Run SCENARIO_FILE: every engine × repetition, one after another, and write results and a report.

    The scenario (with any overrides) is validated before anything starts. Results go to
    OUT/<UTC timestamp>-<scenario>/; nothing existing is overwritten. Exit code 0 when every engine ran, 1 when
    any engine failed, 2 on a bad scenario or option or a missing tool (Java, the JVM jars) found before anything
    starts, 130 when interrupted.
    """
    from harness.report.document import write_report
    from harness.run.runner import run_scenario
    from harness.scenario import apply_overrides, load_scenario

    scenario = apply_overrides(
        load_scenario(scenario_file),
        rate=rate, duration=duration, repetitions=repetitions,
        engines=[name.strip() for name in engine_names.split(",") if name.strip()] if engine_names else None,
        isolation=isolation, source=str(scenario_file),
    )
    outcome = run_scenario(scenario, out)
    if not no_report and outcome.has_results:
        click.echo(f"report: {write_report(outcome.run_dir)}")
    click.echo(f"{outcome.status}: {outcome.run_dir}")
    for failure in outcome.failures:
        click.echo(f"  failed: {failure.splitlines()[0]}", err=True)
    if outcome.status == "interrupted":
        sys.exit(130)
    if outcome.failures:
        sys.exit(1)


@cli.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--engines", "engine_names", default=None,
              help="Comma-separated engines (labels or registered names) to search instead of the scenario's list.")
@click.option("--min", "start", type=RATE, default=None, help="Override capacity.start: the first trial's rate.")
@click.option("--max", "max_rate", type=RATE, default=None, help="Override capacity.max: the highest rate tried.")
@click.option("--precision", type=PERCENT, default=None,
              help="Override capacity.precision: stop when (fail - pass) / pass is at most this, e.g. 5%.")
@click.option("--slo", type=SLO, default=None, help="Override capacity.slo, e.g. p99<=10s.")
@click.option("--trial-duration", type=DURATION, default=None,
              help="Override capacity.trial.duration (warm-up included), e.g. 30s.")
@click.option("--repetitions", type=click.IntRange(min=1, max=100), default=None,
              help="Override capacity.repetitions: searches per engine; with 2 or more the capacity is their mean "
                   "with a 95 % confidence interval.")
@click.option("--no-calibrate", is_flag=True, help="Do not search the calibration engine first.")
@click.option("--trials", "trials_mode", type=click.Choice(["fresh", "stepped"]), default=None,
              help="Override capacity.trials: fresh (a broker and engine per trial) or stepped (one per run of "
                   "several rates, each step a trial).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Directory under which the capacity directory is created.")
def capacity(scenario_file: Path, engine_names: str | None, start: float | None, max_rate: float | None,
             precision: float | None, slo: object, trial_duration: int | None, repetitions: int | None,
             no_calibrate: bool, trials_mode: str | None, out: Path) -> None:
    """Find each engine's sustainable throughput on SCENARIO_FILE's workload: constant-rate trials growing from
    capacity.start until one fails, then bisection until the bracket is within capacity.precision.

    A trial passes when the generator drove the load, the engine kept up, every pair was exact and the SLO (if
    any) held; a trial the generator could not drive ends the search as "bounded by the load path". Results go to
    OUT/<UTC timestamp>-capacity-<scenario>/: capacity.json, capacity.md, capacity.png and trials/<engine>-<rate>/
    (each a normal run directory; -s2, -s3 … for the further searches of --repetitions; with stepped trials
    trials/<engine>-steps<n>-<first rate>-<last rate>/, one per run). `bench report` renders the
    directory, `bench compare` compares two. Exit code 0 when every search ended, 2 on a bad scenario or option or
    a missing tool (Java, the JVM jars) found before anything starts, 130 when interrupted.
    """
    from harness.capacity.runner import run_capacity, with_capacity_overrides
    from harness.report.capacity import write_capacity_files
    from harness.scenario import load_scenario

    scenario = with_capacity_overrides(
        load_scenario(scenario_file), start=start, max=max_rate, precision=precision, slo=slo,
        trial_duration=trial_duration, repetitions=repetitions, calibrate=False if no_calibrate else None,
        trials=trials_mode, source=str(scenario_file),
    )
    names = [name.strip() for name in engine_names.split(",") if name.strip()] if engine_names else None
    outcome = run_capacity(scenario, out, engines=names)  # writes capacity.json
    write_capacity_files(outcome.out_dir)  # capacity.md and capacity.png, rendered from it
    several = outcome.config.repetitions > 1
    for found in outcome.searches:
        result = found.result
        value = "no passing rate" if result.capacity is None else f"{result.capacity:,.0f}/s"
        which = f"{found.engine} search {found.search}" if several else found.engine
        click.echo(f"{which}: {value} ({len(result.trials)} trials, {found.wall_s:,.0f} s) - {result.ended_by}")
    if several:
        from harness.capacity.results import load_capacity

        for engine, entry in load_capacity(outcome.out_dir)["engines"].items():
            mean, ci = entry["capacity"], entry["capacity_ci"]
            click.echo(f"{engine}: " + ("no passing rate" if mean is None else f"{mean:,.0f}/s"
                                        + ("" if ci is None else f" ± {ci:,.0f}/s (95 % CI)")))
    click.echo(f"{outcome.status}: {outcome.out_dir}")
    if outcome.status == "interrupted":
        sys.exit(130)


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--to", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the markdown here (e.g. REPORT.md) instead of RUN_DIR/report.md; needed for several runs.")
@click.option("--preface", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Markdown put before the reports (with --to), e.g. the reading of the results.")
@click.option("--force", is_flag=True, help="Replace the --to file if it exists (it is never replaced otherwise).")
def report(run_dirs: tuple[Path, ...], to: Path | None, preface: Path | None, force: bool) -> None:
    """Write the report (markdown + PNG plots) of RUN_DIR, or of several runs into one file with --to.

    A `bench capacity` directory (it holds capacity.json) is rendered as its capacity tables and plots, alone or
    among runs: `bench report RUN... CAPACITY_DIR --to REPORT.md --preface reading.md`.
    """
    from harness.errors import HarnessError
    from harness.report.document import write_combined_report, write_report
    from harness.report.output import check_target

    if to is not None:
        check_target(to, replace=force, option="--to")
    if len(run_dirs) == 1 and preface is None:
        click.echo(write_report(run_dirs[0], to))
        return
    if to is None:
        raise HarnessError("several run directories (or --preface) need --to FILE, e.g. --to REPORT.md")
    click.echo(write_combined_report(list(run_dirs), to, preface=preface))


@cli.command(epilog=COMPARE_EXIT_CODES)
@click.argument("baselines", metavar="BASELINE...", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("candidate", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--fail-on-regression", "pct", metavar="PCT", type=THRESHOLD_PCT, default=None,
              help="Gate: exit non-zero when a figure of CANDIDATE is worse than the baseline's by more than PCT "
                   "percent and significantly (Welch t-test, 95 %), or the runs are not comparable (exit codes below).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True,
              help="text for terminals and logs, json for programs, md for a CI job summary (run directories).")
@click.option("--allow-env-change", is_flag=True,
              help="Compare runs whose CPU model, cores or versions differ (listed as notes instead of failing).")
@click.option("--skip-incomparable-baselines", "skip_incomparable", is_flag=True,
              help="Leave out baseline runs whose settings or environment differ from CANDIDATE's instead of "
                   "failing (rolling baselines in CI); exit 4 when none is left.")
def compare(baselines: tuple[Path, ...], candidate: Path, pct: float | None, fmt: str, allow_env_change: bool,
            skip_incomparable: bool) -> None:
    """Compare CANDIDATE with the BASELINE run(s): each engine's figures side by side, the change, the smallest
    change detectable with these repetitions, and a verdict. Several BASELINE runs are pooled into one sample.
    Two `bench capacity` directories are compared by their capacities (below).

    Example: `bench compare results/A results/B --fail-on-regression 10`.
    """
    from harness.report import capacity_compare, compare_text
    from harness.report.compare import compare as compare_runs

    if capacity_compare.capacity_kind([*baselines, candidate]):
        capacities = capacity_compare.compare_capacity(list(baselines), candidate, pct,
                                                       allow_env_change=allow_env_change,
                                                       skip_incomparable=skip_incomparable)
        click.echo(capacity_compare.RENDERERS[fmt](capacities), nl=False)
        sys.exit(capacities.exit_code)
    comparison = compare_runs(list(baselines), candidate, pct, allow_env_change=allow_env_change,
                              skip_incomparable=skip_incomparable)
    click.echo(compare_text.RENDERERS[fmt](comparison), nl=False)
    sys.exit(comparison.exit_code)


@cli.command()
@click.argument("dirs", metavar="DIR...", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--to", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write: FILE.csv or FILE.parquet.")
@click.option("--force", is_flag=True, help="Replace the --to file if it exists.")
def export(dirs: tuple[Path, ...], to: Path, force: bool) -> None:
    """Tidy data of run and capacity directories DIR...: one row per run x engine x repetition (a capacity
    directory: its trials), with the run id, scenario, date, commit, machine, verdicts and every figure.
    Exit code 0, or 2 on a directory that is not a readable run or an existing --to without --force.

    Example: `bench export results/2026* --to runs.csv`, then `pandas.read_csv("runs.csv")`.
    """
    from harness.report.export import write_export
    from harness.report.output import check_target

    if to.suffix.lower() not in (".csv", ".parquet"):
        raise click.BadParameter(f"{to}: export writes .csv or .parquet; name the file with one of these suffixes",
                                 param_hint="--to")
    check_target(to, replace=force, option="--to")
    click.echo(write_export(list(dirs), to))


@cli.command()
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--to", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the markdown here (default: print it).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the PNG plot here (default: history.png beside --to, or in the current directory).")
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@click.option("--force", is_flag=True, help="Replace the --to and --plot files (default history.png) if they exist.")
def history(run_dirs: tuple[Path, ...], to: Path | None, plot: Path | None, no_plot: bool, force: bool) -> None:
    """Trend of each engine's result latency p50/p99, processed rate and CPU over the runs RUN_DIR..., in time
    order: a markdown table per engine (runs whose settings or environment changed are marked) and a plot.

    Example: `bench history results/2026*-nightly --to history.md`.
    """
    from harness.report.history import write_history
    from harness.report.output import check_target

    if no_plot:
        plot = None
    elif plot is None:
        plot = (to.parent if to is not None else Path.cwd()) / "history.png"
    for path, option in ((to, "--to"), (plot, "--plot")):
        if path is not None:
            check_target(path, replace=force, option=option)
    text, written = write_history(list(run_dirs), to, plot)
    if to is None:
        click.echo(text, nl=False)
    else:
        click.echo(to)
    if written is not None:
        click.echo(written, err=to is None)


@cli.command()
def engines() -> None:
    """List the registered engines (scenarios may also name any `module:Class`)."""
    from harness.engines.registry import BUILTIN, registered_engines

    for name, engine in registered_engines().items():
        if isinstance(engine, LookupError):
            click.echo(f"{name:14} (cannot load: {engine})")
        else:
            click.echo(f"{name:14} {engine.description}  [{BUILTIN[name]}]")


@cli.command()
@click.option("--update-lock", is_flag=True, help="Record the fetched jars' checksums (after a version change).")
def setup(update_lock: bool) -> None:
    """Fetch the JVM artifacts (Kafka broker, Spark and Flink Kafka connectors) with Maven into the cache,
    verifying checksums. Quick when the cache is complete."""
    from harness.infra import jvm

    java = jvm.find_java()
    click.echo(f"java: {java} (Java {jvm.java_version(java)})")
    for name, bundle in jvm.BUNDLES.items():
        jars = jvm.fetch(name, log=click.echo, relock=update_lock)
        click.echo(f"{name}: {len(jars)} jar(s) verified in {jvm.bundle_dir(name)} — {bundle.purpose}")


@cli.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Broker port on 127.0.0.1.")
@click.option("--dir", "work_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Storage and log directory (default: a new temporary directory).")
def kafka(port: int, work_dir: Path | None) -> None:
    """Run the embedded Kafka broker in the foreground until Ctrl-C (for manual use)."""
    import tempfile
    import time

    from harness.kafka import EmbeddedKafka

    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    with EmbeddedKafka(work_dir, port=port) as broker:
        click.echo(f"Kafka {broker.versions()['kafka']} ready at {broker.bootstrap}; log: {broker.log_path}")
        click.echo("Ctrl-C to stop.")
        try:
            while broker.process is not None and broker.process.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo("stopping")


@cli.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bootstrap", help="Kafka to write to (default: the scenario's external kafka.bootstrap).")
@click.option("--topic", default=None, help="Topic to drive (default: <scenario name>-events); must not exist yet.")
@click.option("--recreate", is_flag=True, help="Delete and recreate the topic if it exists (it may not be yours!).")
@click.option("--rate", type=RATE, default=None, help="Override load.rate, e.g. 50k.")
@click.option("--duration", type=DURATION, default=None, help="Override duration, e.g. 2m.")
def generate(scenario_file: Path, bootstrap: str | None, topic: str | None, rate: float | None,
             duration: int | None, recreate: bool) -> None:
    """Drive SCENARIO_FILE's load into a Kafka topic on its own, for use with any consumer.

    The topic is created with the scenario's partition count; an existing topic is refused unless --recreate
    (which deletes it first). The end-of-run records follow the load.
    Start a broker with `bench kafka` if you have none.
    """
    from harness.errors import HarnessError
    from harness.kafka import create_topics
    from harness.loadgen import run_generator
    from harness.scenario import apply_overrides, load_scenario

    scenario = apply_overrides(load_scenario(scenario_file, check_engines=False), rate=rate, duration=duration,
                               source=str(scenario_file))
    bootstrap = bootstrap or scenario.kafka.bootstrap
    if not bootstrap:
        raise HarnessError("bench generate needs a broker: pass --bootstrap HOST:PORT (start one with `bench kafka`)")
    topic = topic or f"{scenario.name}-events"
    create_topics(bootstrap, {topic: scenario.kafka.partitions}, replication_factor=scenario.kafka.replication_factor,
                  recreate=recreate)
    total_s = scenario.duration / 1000

    def progress(p):  # type: ignore[no-untyped-def]
        if p.elapsed_ms >= 0:
            click.echo(f"\r{p.elapsed_ms / 1000:5.0f}/{total_s:.0f} s  sent {p.sent:,}/{p.planned:,}"
                       f"  behind {max(p.due - p.sent, 0):,}", nl=False)

    result = run_generator(scenario, bootstrap, topic, progress=progress)
    click.echo("")
    click.echo(f"sent {result.events_sent:,} events to {topic} at {result.achieved_rate:,.0f}/s "
               f"(target {result.target_rate:,.0f}/s); publish delay p99 {result.publish_delay_ms.get('p99', 0):.1f} ms")
    click.echo("valid" if result.valid else f"INVALID: {result.reason}")


@cli.group()
def perf() -> None:
    """Benchmarks of the harness's own parts."""


@perf.command("producer")
@click.option("--records", type=int, default=2_000_000, show_default=True)
@click.option("--record-size", type=int, default=100, show_default=True, help="Bytes per record.")
@click.option("--partitions", type=int, default=4, show_default=True)
@click.option("--linger", "linger_ms", type=int, default=5, show_default=True, help="linger.ms for both.")
def perf_producer(records: int, record_size: int, partitions: int, linger_ms: int) -> None:
    """Kafka's kafka-producer-perf-test vs this generator, same embedded broker, records and partitions."""
    from harness.run.perf import compare_producers

    for line in compare_producers(records, record_size, partitions, linger_ms).lines():
        click.echo(line)


@perf.command("collector")
@click.option("--records", type=int, default=1_000_000, show_default=True)
@click.option("--partitions", type=int, default=4, show_default=True)
@click.option("--bootstrap", default=None, help="An existing Kafka cluster instead of the embedded broker.")
def perf_collector(records: int, partitions: int, bootstrap: str | None) -> None:
    """How fast the live collector reads result records from a real result topic."""
    from harness.run.perf import measure_collector

    for line in measure_collector(records, partitions, bootstrap=bootstrap).lines():
        click.echo(line)


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors are one message and a non-zero exit, without a traceback. SIGTERM (a CI timeout,
    `kill`) stops a run as cleanly as Ctrl-C: engines stopped, what was measured kept, the run marked interrupted."""
    import signal

    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a non-interactive shell
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ScenarioError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        click.echo(f"{len(exc.lines)} error(s); nothing was started.", err=True)
        sys.exit(exc.exit_code)
    except HarnessError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
