"""Where the code of a run came from: the git commit of the checkout and whether it had uncommitted changes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """``{"git_commit": sha | "unknown", "git_dirty": bool | None}`` of the installed checkout (an installed
    wheel outside a git checkout has no commit: "unknown", dirty None)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": None}
    return {"git_commit": commit, "git_dirty": bool(status.strip())}


def canonical_hash(doc: dict[str, Any]) -> str:
    """The sha256 (hex) of ``doc`` as sorted, compact JSON: the same document always gives the same hash."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
