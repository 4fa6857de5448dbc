"""Group a gallery's faces into persons and save them: incrementally, or all over again.

Incremental (the default): faces already in a person stay there; a new face joins the person
its nearest assigned faces vote for (``people.attach``), or, with the label of a named person,
that person; the faces still left over are clustered among themselves and every group of at
least ``min_faces`` becomes a new person, the rest wait for company. Full (``full=True``):
every face not moved out by a user is clustered again; new persons keep the ids of the old ones
they mostly hold, so names and links survive. A person holding labelled faces takes their
majority label.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ConfigError
from indexer.people import (
    DEFAULT_K,
    DEFAULT_MIN_FACES,
    UNASSIGNED,
    Method,
    Progress,
    attach,
    cluster,
)
from indexer.people_store import Faces, PeopleStore


@dataclass
class ClusterSummary:
    faces: int
    persons: int
    assigned: int
    unassigned: int
    new_persons: int
    joined: int
    """Faces that joined a person in this run."""
    threshold: float
    min_faces: int
    full: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        share = self.unassigned / self.faces if self.faces else 0.0
        return (
            f"{self.persons} persons ({self.new_persons} new) over {self.assigned} of "
            f"{self.faces} faces; {self.unassigned} unassigned ({share:.0%}); {self.joined} "
            f"faces joined a person; threshold {self.threshold:.3f}, at least {self.min_faces} "
            f"faces per person; {'full' if self.full else 'incremental'} run in "
            f"{self.seconds:.1f} s"
        )


def group_faces(
    db_path: Path | str,
    threshold: float,
    min_faces: int = DEFAULT_MIN_FACES,
    full: bool = False,
    k: int = DEFAULT_K,
    method: Method = "whispers",
    progress: Progress | None = None,
) -> ClusterSummary:
    """Cluster the gallery in ``db_path`` and store its persons; returns what changed."""
    start = time.perf_counter()
    store = PeopleStore(db_path)
    faces, stored = store.faces()
    held_out = {f for f, (p, by_user) in stored.items() if by_user and p is None}
    present = set(faces.ids)
    current = (
        {} if full else {f: p for f, (p, _) in stored.items() if p is not None and f in present}
    )
    labels = store.labels()
    todo = [i for i, f in enumerate(faces.ids) if f not in held_out and f not in current]
    joins = {} if full else _join(faces, todo, current, labels, threshold, k)
    rest = [i for i in todo if faces.ids[i] not in joins]
    groups = _new_groups(faces, rest, threshold, min_faces, k, method, progress)
    if full:
        groups, kept = _keep_ids(groups, faces, stored)
    else:
        kept = {}
    assignments = dict(joins)
    new_people: dict[int, tuple[str | None, str]] = {}
    relabel: dict[int, str | None] = {}
    for key, members in groups.items():
        assignments.update({faces.ids[i]: key for i in members})
        label = _majority([faces.labels[i] for i in members]) or labels.get(kept.get(key, -1))
        if key in kept:
            relabel[key] = label
        else:
            new_people[key] = (label, faces.ids[members[0]])
    everyone = {**current, **assignments}
    covers = _covers(faces, {f: p for f, p in everyone.items() if p >= 0})
    created = store.save(assignments, new_people, covers, replace=full, relabel=relabel)
    _save_covers(store, faces, everyone, created)
    persons = {created.get(p, p) for p in everyone.values()}
    assigned = len(everyone)
    return ClusterSummary(
        faces=len(faces.ids),
        persons=len(persons),
        assigned=assigned,
        unassigned=len(faces.ids) - assigned,
        new_persons=len(new_people),
        joined=len(assignments),
        threshold=threshold,
        min_faces=min_faces,
        full=full,
        seconds=time.perf_counter() - start,
    )


def _join(
    faces: Faces,
    todo: list[int],
    current: dict[str, int],
    labels: dict[int, str | None],
    threshold: float,
    k: int,
) -> dict[str, int]:
    """New faces that join an existing person: by its name, else by their nearest members."""
    if not todo or not current:
        return {}
    by_name = {label: p for p, label in labels.items() if label}
    joins = {
        faces.ids[i]: by_name[label]
        for i in todo
        if (label := faces.labels[i]) is not None and label in by_name
    }
    left = [i for i in todo if faces.ids[i] not in joins and faces.labels[i] is None]
    row = {f: i for i, f in enumerate(faces.ids)}
    member_rows = np.array([row[f] for f in current if f in row], dtype=np.int64)
    member_person = np.array([current[f] for f in current if f in row], dtype=np.int64)
    found = attach(faces.vectors[left], faces.vectors[member_rows], member_person, threshold, k)
    joins.update({faces.ids[i]: int(p) for i, p in zip(left, found, strict=True) if p >= 0})
    return joins


def _new_groups(
    faces: Faces,
    rows: list[int],
    threshold: float,
    min_faces: int,
    k: int,
    method: Method,
    progress: Progress | None,
) -> dict[int, list[int]]:
    """Persons among these faces, keyed -1, -2, ... (not yet in the database)."""
    if not rows:
        return {}
    names = [faces.labels[i] for i in rows]
    codes = {name: n for n, name in enumerate(dict.fromkeys(x for x in names if x))}
    fixed = np.array([codes.get(name, -1) if name else -1 for name in names], dtype=np.int64)
    found = cluster(faces.vectors[rows], threshold, min_faces, k, method, fixed, progress)
    groups: dict[int, list[int]] = {}
    for row, person in zip(rows, found, strict=True):
        if person != UNASSIGNED:
            groups.setdefault(-1 - int(person), []).append(row)
    return groups


def _keep_ids(
    groups: dict[int, list[int]], faces: Faces, stored: dict[str, tuple[int | None, bool]]
) -> tuple[dict[int, list[int]], dict[int, int]]:
    """A full run's groups -> the old person most of their faces were in, each claimed once
    (largest groups first); returns the groups keyed by old id where kept, and key -> old id."""
    kept: dict[int, int] = {}
    claimed: set[int] = set()
    for key, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        previous = (stored.get(faces.ids[i], (None, False))[0] for i in members)
        old = Counter(p for p in previous if p is not None)
        for person, _ in old.most_common():
            if person not in claimed:
                claimed.add(person)
                kept[key] = person
                break
    renamed = {kept.get(key, key): members for key, members in groups.items()}
    return renamed, {person: person for person in kept.values()}


def _majority(labels: list[str | None]) -> str | None:
    counted = Counter(label for label in labels if label)
    return counted.most_common(1)[0][0] if counted else None


def _covers(faces: Faces, everyone: dict[str, int]) -> dict[int, str]:
    """Per person, the face nearest the mean of its faces: the one that shows it best."""
    row = {f: i for i, f in enumerate(faces.ids)}
    members: dict[int, list[int]] = {}
    for face, person in everyone.items():
        if face in row:
            members.setdefault(person, []).append(row[face])
    covers = {}
    for person, rows in members.items():
        vectors = faces.vectors[rows]
        covers[person] = faces.ids[rows[int(np.argmax(vectors @ vectors.mean(axis=0)))]]
    return covers


def _save_covers(
    store: PeopleStore, faces: Faces, everyone: dict[str, int], created: dict[int, int]
) -> None:
    """Covers of new persons, now that they have ids."""
    if created:
        resolved = {f: created.get(p, p) for f, p in everyone.items()}
        new_ids = set(created.values())
        covers = _covers(faces, {f: p for f, p in resolved.items() if p in new_ids})
        store.save({}, {}, covers, replace=False)


def gallery_threshold(gallery_model: str | None, model: Path | str | None) -> tuple[float, str]:
    """The same-person cosine for a gallery, and where it comes from: the calibrated one of the
    checkpoint that made the gallery's vectors (``model``, else the shipped one), else the
    default. A checkpoint of another model says nothing about these vectors."""
    from indexer.checkpoint import fingerprint, read_checkpoint
    from indexer.defaults import DEFAULT_MODEL
    from indexer.people import DEFAULT_THRESHOLD, calibrated_grouping_threshold

    path = Path(model) if model else DEFAULT_MODEL
    if gallery_model and path.is_file() and fingerprint(path) == gallery_model.partition(":")[0]:
        calibrated = calibrated_grouping_threshold(read_checkpoint(path).get("thresholds", {}))
        if calibrated is not None:
            return calibrated, f"calibrated for {path.name}"
        return DEFAULT_THRESHOLD, f"default: {path.name} carries no calibrated threshold"
    return DEFAULT_THRESHOLD, "default: the gallery's model checkpoint was not found"


def cluster_command(
    db_path: Path,
    full: bool,
    min_faces: int,
    threshold: float | None,
    model: str | None,
) -> int:
    """``python -m indexer cluster``: a progress bar per stage, then a one-line summary."""
    from tqdm import tqdm

    if min_faces < 1:
        raise ConfigError("--min-faces must be at least 1")
    where = "given by --threshold"
    if threshold is None:
        threshold, where = gallery_threshold(PeopleStore(db_path).gallery_model(), model)
    print(f"same-person threshold {threshold:.3f} ({where})", file=sys.stderr)
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            unit = "faces" if stage == "graph" else "rounds"
            bar = bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        summary = group_faces(db_path, threshold, min_faces, full, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    print(summary.line())
    return 0
