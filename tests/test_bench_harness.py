"""The ``python -m bench`` harness: every bench is listed, results render into BENCHMARKS.md, bad names fail.

Each bench's own smoke run is tested beside its capability (tests/*/test_*bench*); this checks the harness."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from bench.__main__ import BENCHES, main, render


def test_every_bench_module_exists_and_has_run() -> None:
    for name in BENCHES:
        module = importlib.import_module(f"bench.{name}")
        assert callable(module.run), name


def test_render_flattens_results_and_names_the_machine() -> None:
    text = render(
        {"demo": {"ours_us": 1.5, "baseline": {"us": 3.0}, "ratio": 0.5}, "bad": {"error": "X: y"}},
        seconds=2.0,
        argv=[],
    )
    assert "## demo" in text and "| ours_us | 1.5 |" in text and "| baseline.us | 3 |" in text
    assert "Failed: `X: y`" in text
    assert "Machine:" in text and "python -m bench" in text


def test_unknown_bench_name_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2
    assert "unknown bench" in capsys.readouterr().err


def test_smoke_mode_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "B.md"
    assert main(["--smoke", "--output", str(out), "bans"]) == 0
    assert not out.exists()
