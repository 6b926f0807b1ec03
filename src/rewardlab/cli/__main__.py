"""``python -m rewardlab.cli`` = ``rewardlab``."""

from rewardlab.cli.main import app

app()
