"""``rewardlab serve``: the HTTP reward server (OpenRLHF ``/get_reward``, ``/score``, ``/health``)."""

from __future__ import annotations

import typer

from rewardlab.cli.common import clean_errors, console
from rewardlab.cli.main import app
from rewardlab.cli.options import config_command
from rewardlab.serve.config import ServeConfig


@config_command(app, "serve", ServeConfig)
@clean_errors
def serve_cmd(cfg: ServeConfig) -> None:
    """Serve a saved reward model over HTTP on 127.0.0.1 (unless --host).

    OpenRLHF: ``--reward.remote_url http://HOST:PORT/get_reward``. With --policy-tokenizer the
    policy's chat template and end-of-turn tokens are removed from each query. --normalize-on FILE
    fits the reward mean/std, stores it in MODEL/rewardlab.json ("normalization") and applies it;
    --normalize applies a stored one. Token: --token or $REWARDLAB_TOKEN."""
    from rewardlab.serve import serve

    try:
        serve(cfg)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
