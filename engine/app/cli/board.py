"""``duban board``: serve the read-only status board (and /calendar.ics)."""

from __future__ import annotations

import ipaddress

import click

from ...clock import Clock, FixedClock
from ...config import parse_listen
from ...errors import BadInput
from ...heap import settle
from ..http.app import Site, create_app
from ..http.auth import board_token
from ..http.server import serve_forever
from .context import App, at_option, pass_app
from .language import Command
from .output import say, warn


@click.command("board", cls=Command)
@click.option("--listen", default="127.0.0.1:8791", show_default=True, metavar="HOST:PORT",
              help="Where to serve. Requests from other machines need the [board] token.")
@at_option
@pass_app
def board(app: App, listen: str, at: str | None) -> None:
    """Serve the read-only status board (and /calendar.ics) until interrupted."""
    try:
        host, _ = parse_listen(listen)
    except ValueError as exc:
        raise BadInput(f"--listen: {exc}") from None
    token = board_token(app.config)
    token_env = app.config.board.token_env
    if token_env and token is None:
        warn(f"environment variable {token_env} is empty: only local requests will be served")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and token is None:
        warn("listening beyond this machine without a token: remote requests will all be refused")
    app.sync_duties(at)
    clock = FixedClock(app.now(at)) if at else Clock()
    runtime = app.runtime
    site = Site(runtime=lambda: runtime, sessions=app.readers, clock=clock, token=lambda: token, writers=app.sessions)
    say(f"duban board on http://{listen}/ (Ctrl-C to stop)")
    served = create_app(site)
    settle()  # what start-up made stays: out of the cyclic collector's way (engine.heap)
    try:
        serve_forever(served, listen)
    except OSError as exc:
        raise BadInput(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    say("stopped")
