"""`import rewardlab` leaves the Hub settings alone; loading embedded models is offline only inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import json, os
    import rewardlab
    import rewardlab.assets, rewardlab.llm, rewardlab.feedback  # the modules that load models
    import huggingface_hub.constants as hub
    out = {"after_import": os.environ.get("HF_HUB_OFFLINE"), "hub_after_import": hub.HF_HUB_OFFLINE}
    from rewardlab.assets import offline_hub
    with offline_hub():
        out["inside"] = os.environ.get("HF_HUB_OFFLINE")
        out["hub_inside"] = hub.HF_HUB_OFFLINE
    out["after_block"] = os.environ.get("HF_HUB_OFFLINE")
    out["hub_after_block"] = hub.HF_HUB_OFFLINE
    print(json.dumps(out))
    """
)


def run_probe(code: str, env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_import_leaves_hf_hub_offline_unset() -> None:
    out = run_probe(PROBE, {})
    assert out["after_import"] is None and out["hub_after_import"] is False
    assert out["inside"] == "1" and out["hub_inside"] is True
    assert out["after_block"] is None and out["hub_after_block"] is False


def test_a_value_set_before_is_kept() -> None:
    out = run_probe(PROBE, {"HF_HUB_OFFLINE": "0"})
    assert out["after_import"] == "0" and out["inside"] == "0" and out["after_block"] == "0"
    assert not out["hub_inside"]  # the caller asked for online mode: respected


@pytest.mark.slow
def test_loading_the_embedded_llm_restores_the_environment() -> None:
    code = textwrap.dedent(
        """
        import json, os
        import huggingface_hub.constants as hub
        from rewardlab.llm import LocalBackend
        llm = LocalBackend("smollm2", device="cpu", threads=1)
        print(json.dumps({"env": os.environ.get("HF_HUB_OFFLINE"), "hub": hub.HF_HUB_OFFLINE,
                          "vocab": llm.lm.config.vocab_size}))
        """
    )
    out = run_probe(code, {})
    assert out["env"] is None and out["hub"] is False and out["vocab"] > 1000
