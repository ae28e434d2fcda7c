"""Which preprocessed scene outputs go into which stack: read their tags, check they lie on
the event grid, and sort them into pass direction x pre/post window."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..products import MASK_BAND, STACK_TAGS
from ..errors import ConfigError, InputError
from ..grid import Grid, raster_info

PASSES = {"ASCENDING": "asc", "DESCENDING": "desc"}
"""Pass tag of a scene output -> the short name used in file names."""
WINDOWS = ("pre", "post")
POLS = ("VV", "VH")


@dataclass(frozen=True)
class SceneFile:
    """One preprocessed scene output and what the stacker needs to know about it."""

    path: Path
    product_id: str
    pass_: str  # asc | desc
    time: dt.datetime
    relative_orbit: str
    bands: dict[str, int]  # polarisation -> 1-based band index
    mask_band: int
    radiometry: str = "sigma0"  # sigma0 | gamma0 (the ``radiometry`` tag; GRD engines: sigma0)

    @property
    def date(self) -> str:
        return self.time.strftime("%Y-%m-%dT%H:%M:%SZ")


FRAME_GAP = dt.timedelta(minutes=5)
"""Scene outputs of one pass and relative orbit starting within this of each other are
consecutive frames of one datatake: one date, mosaicked."""


@dataclass(frozen=True)
class Acquisition:
    """One date of one pass over the area: one scene output, or several consecutive frames."""

    scenes: tuple[SceneFile, ...]

    @property
    def time(self) -> dt.datetime:
        return self.scenes[0].time

    @property
    def date(self) -> str:
        return self.scenes[0].date

    @property
    def pass_(self) -> str:
        return self.scenes[0].pass_

    @property
    def relative_orbit(self) -> str:
        return self.scenes[0].relative_orbit

    @property
    def product_id(self) -> str:
        return "+".join(s.product_id for s in self.scenes)


def acquisitions(scenes: Sequence[SceneFile], gap: dt.timedelta = FRAME_GAP) -> list[Acquisition]:
    """Group time-sorted scene outputs into acquisitions (frames of one datatake together)."""
    groups: list[list[SceneFile]] = []
    last: dict[tuple[str, str], list[SceneFile]] = {}
    for s in sorted(scenes, key=lambda x: x.time):
        key = (s.pass_, s.relative_orbit)
        group = last.get(key)
        if group is not None and s.time - group[-1].time <= gap:
            group.append(s)
            continue
        last[key] = [s]
        groups.append(last[key])
    return [Acquisition(tuple(g)) for g in groups]


@dataclass
class Selection:
    """The acquisitions of each (pass, window) stack, sorted by time, and the single pair."""

    stacks: dict[tuple[str, str], list[Acquisition]]
    nearest_pre: Optional[Acquisition]
    nearest_post: Optional[Acquisition]
    """The G4-G6 pair (ascending); None when ascending lacks pre- or post-event scenes."""
    ignored: list[Acquisition] = field(default_factory=list)
    passes: tuple[str, ...] = ("asc", "desc")
    """Passes with both pre- and post-event acquisitions: the ones that have a change."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Outputs not made, and why (a pass without pre- or post-event scenes)."""
    radiometry: str = "sigma0"

    def describe(self) -> dict:
        """Plain-data summary (dates and product ids per stack) for tags and state files."""
        out = {f"{p}_{w}": [s.date for s in v] for (p, w), v in self.stacks.items()}
        out["single_pre"] = self.nearest_pre.date if self.nearest_pre else None
        out["single_post"] = self.nearest_post.date if self.nearest_post else None
        out["ignored"] = [s.product_id for s in self.ignored]
        out["passes"] = list(self.passes)
        out["left_out"] = dict(self.left_out)
        out["radiometry"] = self.radiometry
        return out


def _parse_time(value: str, path: Path) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{path}: tag acquisition_time {value!r} is not an ISO 8601 time; "
                         "reprocess the scene with sarflow preprocess") from None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def read_scene(path: Path, grid: Grid, polarisations: Sequence[str]) -> SceneFile:
    """Describe one scene output; raise unless it is on ``grid`` with the needed bands/tags."""
    info = raster_info(path)
    grid.check_same(info.grid, what=str(path))
    missing = [t for t in STACK_TAGS if t not in info.tags]
    if missing:
        raise InputError(f"{path}: missing tags {missing}; it is not a sarflow scene output "
                         "(rerun sarflow preprocess)")
    desc = list(info.descriptions)
    radiometry = info.tags.get("radiometry", "sigma0").strip().lower()
    bands = {}
    for pol in polarisations:
        name = f"{radiometry}_{pol}"
        if name not in desc:
            raise InputError(f"{path}: no band {name} (bands {desc}); reprocess it with "
                             f"polarisations {list(polarisations)}")
        bands[pol] = desc.index(name) + 1
    if MASK_BAND not in desc:
        raise InputError(f"{path}: no band {MASK_BAND} (bands {desc}); reprocess it")
    pass_tag = info.tags["pass"].strip().upper()
    if pass_tag not in PASSES:
        raise InputError(f"{path}: tag pass={info.tags['pass']!r}, expected ASCENDING or DESCENDING")
    return SceneFile(path=Path(path), product_id=info.tags["product_id"], pass_=PASSES[pass_tag],
                     time=_parse_time(info.tags["acquisition_time"], path),
                     relative_orbit=str(info.tags["relative_orbit"]), bands=bands,
                     mask_band=desc.index(MASK_BAND) + 1, radiometry=radiometry)


def scan(folder: Path, grid: Grid, polarisations: Sequence[str]) -> list[SceneFile]:
    """Every scene output (``*.tif``) in ``folder``, sorted by acquisition time."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.tif") if not p.name.startswith("."))
    if not files:
        raise InputError(f"no preprocessed scenes in {folder}; run `sarflow preprocess EVENT.yaml` first")
    return sorted((read_scene(p, grid, polarisations) for p in files), key=lambda s: s.time)


def _in(t: dt.datetime, window: tuple[dt.datetime, dt.datetime]) -> bool:
    return window[0] <= t < window[1]


def select(scenes: Sequence[SceneFile], pre: tuple[dt.datetime, dt.datetime],
           post: tuple[dt.datetime, dt.datetime], event_time: dt.datetime) -> Selection:
    """Sort acquisitions into (pass, window) stacks; pre means before the event, post at or after.

    The single-scene pair (groups G4-G6) is the first ascending post-event acquisition and
    the last ascending pre-event one of the same relative orbit (else the last one of any).
    """
    stacks: dict[tuple[str, str], list[Acquisition]] = {(p, w): [] for p in PASSES.values() for w in WINDOWS}
    ignored = []
    for s in acquisitions(scenes):
        if _in(s.time, pre) and s.time < event_time:
            stacks[(s.pass_, "pre")].append(s)
        elif _in(s.time, post) and s.time >= event_time:
            stacks[(s.pass_, "post")].append(s)
        else:
            ignored.append(s)
    radiometry = check_radiometry([a for v in stacks.values() for a in v])
    names = {"asc": "ascending", "desc": "descending"}
    empty = [f"{names[p]} {w}-event" for (p, w), v in stacks.items() if not v]
    passes = tuple(p for p in PASSES.values() if stacks[(p, "pre")] and stacks[(p, "post")])
    if not passes:
        counts = ", ".join(f"{p} {w}: {len(v)}" for (p, w), v in stacks.items())
        raise InputError(
            f"no scenes for {', '.join(empty)} ({counts}; windows pre {pre[0].date()}..{pre[1].date()}, "
            f"post {post[0].date()}..{post[1].date()}); add scenes of that pass and window to "
            "`scenes` and rerun `sarflow preprocess`, or widen `windows`")
    left_out = one_pass_left_out(stacks, passes)
    pre_scene = post_scene = None
    if "asc" in passes:
        post_scene = stacks[("asc", "post")][0]
        same_orbit = [s for s in stacks[("asc", "pre")] if s.relative_orbit == post_scene.relative_orbit]
        pre_scene = (same_orbit or stacks[("asc", "pre")])[-1]
    return Selection(stacks=stacks, nearest_pre=pre_scene, nearest_post=post_scene, ignored=ignored,
                     passes=passes, left_out=left_out, radiometry=radiometry)


def check_radiometry(acqs: Sequence[Acquisition]) -> str:
    """The one radiometric convention of the stack's scenes; InputError when they mix."""
    found: dict[str, list[str]] = {}
    for a in acqs:
        for s in a.scenes:
            found.setdefault(s.radiometry, []).append(s.product_id)
    if len(found) > 1:
        parts = ", ".join(f"{len(v)} {k} (e.g. {v[0]})" for k, v in sorted(found.items()))
        raise InputError(f"the scene outputs mix radiometric conventions: {parts}; a stack never "
                         "mixes sigma0 and gamma0: keep products of one convention in scenes and "
                         "remove the others from the preprocessed folder")
    return next(iter(found), "sigma0")


def one_pass_left_out(stacks: dict, passes: Sequence[str]) -> dict[str, str]:
    """Outputs that cannot be made when a pass lacks pre- or post-event scenes, and why."""
    names = {"asc": "ascending", "desc": "descending"}
    out: dict[str, str] = {}
    for p in PASSES.values():
        missing = [w for w in WINDOWS if not stacks[(p, w)]]
        if not missing:
            continue
        why = f"no {names[p]} {' or '.join(missing)}-event scenes"
        for w in missing:
            for pol in POLS:
                out[f"median_{p}_{pol}_{w}"] = why
        for pol in POLS:
            out[f"change_{p}_{pol}"] = why
        out["G2" if p == "asc" else "G3"] = why
        if p == "asc":
            for g in ("G4", "G5", "G6"):
                out[g] = why + " (the single pre/post pair is ascending)"
    return out


def check_polarisations(polarisations: Sequence[str]) -> None:
    """The six groups are dual-polarised: the event must ask for both VV and VH."""
    if set(polarisations) != set(POLS):
        raise ConfigError(f"polarisations: {list(polarisations)} is not allowed: the stacker's "
                          "six groups need both VV and VH; set polarisations: [VV, VH]")
