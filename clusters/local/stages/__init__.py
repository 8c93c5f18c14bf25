"""The kwok Stage objects every new local cluster is created with (the YAML files beside this
module): how simulated nodes and pods move through their lives, including the failures Flotilla
lets a user simulate (see README.md).

kwokctl adds its own default stages only when the configuration names none, so these files
spell out the defaults' behaviour too; they are written into a cluster's kwok.yaml once, at
creation, and a restart or an upgrade of the control plane keeps them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# A pod carrying this annotation with the value "never" runs but never becomes Ready.
READINESS_ANNOTATION = "local.flotilla.dev/readiness"
NEVER_READY = "never"
STAGE_API_VERSION = "kwok.x-k8s.io/v1alpha1"
_DIRECTORY = Path(__file__).resolve().parent


def stage_files() -> list[Path]:
    """The stage files, in a stable order (one Stage per file)."""
    return sorted(_DIRECTORY.glob("*.yaml"))


def stage_documents() -> list[dict[str, Any]]:
    """Every Stage object, parsed; ValueError names a file that is not one Stage or a name
    given twice (kwok would otherwise take one stage for another without a word)."""
    documents: list[dict[str, Any]] = []
    names: set[str] = set()
    for path in stage_files():
        loaded = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        if len(loaded) != 1 or not isinstance(loaded[0], dict):
            raise ValueError(f"{path.name}: expected exactly one Stage object")
        document = loaded[0]
        if document.get("apiVersion") != STAGE_API_VERSION or document.get("kind") != "Stage":
            raise ValueError(f"{path.name}: not a {STAGE_API_VERSION} Stage")
        name = str((document.get("metadata") or {}).get("name") or "")
        if not name or name in names:
            raise ValueError(f"{path.name}: a Stage needs a name of its own (got {name!r})")
        names.add(name)
        documents.append(document)
    return documents
