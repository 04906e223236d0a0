"""The committed snippet build, checked from pytest too: it equals a fresh build of js/src
(with the pinned tools from js/package-lock.json) and stays within the gzip budget."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "js"
BUDGET = 1536


def test_the_snippet_is_within_its_gzip_budget() -> None:
    data = (JS / "dist" / "t.js").read_bytes()
    assert len(gzip.compress(data, compresslevel=9)) <= BUDGET
    assert len(gzip.compress(data, compresslevel=6)) <= BUDGET


def test_the_committed_build_equals_a_fresh_build() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js is missing: run the README's test command, which installs it")
    if not (JS / "node_modules" / "esbuild").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=JS, check=True, timeout=600
        )
    result = subprocess.run(
        ["node", "build.js", "--check"], cwd=JS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "bytes minified" in result.stdout and "bytes gzipped" in result.stdout
