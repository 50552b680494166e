"""``robopost demo``: the whole system live on the sample campus (see ``launch.demo``); ``make run``
calls it, and ``launch/cli.py`` registers it as ``app.command("demo")(demo)``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from launch.demo import EXIT_BAD_INPUT, BrokerChoice, DemoError, DemoOptions, run_demo


def demo(
    time_factor: Annotated[
        float, typer.Option("--time-factor", help="simulated robots and lifts run this many times real speed")
    ] = 10.0,
    port: Annotated[int, typer.Option(help="the console and API port (http://127.0.0.1:PORT)")] = 8000,
    broker: Annotated[
        str, typer.Option(help="auto (Mosquitto if installed, else embedded), mosquitto or embedded")
    ] = "auto",
    workdir: Annotated[
        Path, typer.Option(help="folder for the generated configs, the store and the console login")
    ] = Path("var/demo"),
    mqtt_port: Annotated[int | None, typer.Option(help="the broker's port (default: a free one)")] = None,
    grace: Annotated[float, typer.Option(help="seconds a process may take to stop before SIGKILL")] = 10.0,
    ready_timeout: Annotated[float, typer.Option(help="seconds each start-up step may take")] = 60.0,
    start_at: Annotated[
        str | None,
        typer.Option(
            help="HH:MM campus time the simulated clock starts at, or now (default: the demo file's, 07:20)"
        ),
    ] = None,
) -> None:
    """Start broker, orchestrator, elevator bridges and the simulated fleet; Ctrl-C stops them all."""
    if broker not in ("auto", "mosquitto", "embedded"):
        print(f"robopost: --broker must be auto, mosquitto or embedded, not {broker!r}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT)
    choice: BrokerChoice = broker  # type: ignore[assignment]  # checked just above
    try:
        options = DemoOptions(
            time_factor=time_factor,
            port=port,
            broker=choice,
            workdir=workdir,
            mqtt_port=mqtt_port,
            grace_s=grace,
            ready_timeout_s=ready_timeout,
            start_at=start_at,
        )
    except DemoError as exc:
        print(f"robopost: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(run_demo(options))


app = typer.Typer(help="The live demo.", no_args_is_help=False)
app.command("demo")(demo)


if __name__ == "__main__":
    app()
