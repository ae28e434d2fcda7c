"""EOF orbit files: parsing, interpolation against held-out state vectors, file selection."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from sarflow.errors import CorruptInputError
from sarflow.sentinel1 import Orbit, read_eof
from sarflow.sentinel1.eof import eof_info, find_eof

UTC = dt.timezone.utc


def _files(fixtures_dir):
    orbits = fixtures_dir / "orbits"
    poe = next(orbits.glob("*POEORB*.EOF"))
    res = next(orbits.glob("*RESORB*.EOF"))
    return poe, res


def test_eof_parse(fixtures_dir):
    poe, res = _files(fixtures_dir)
    o = read_eof(poe)
    assert o.source == f"POEORB {poe.name}"
    assert o.times.size == 187 and o.method == "lagrange" and abs(o.spacing - 10.0) < 1e-9
    # first state vector of the file, copied by hand
    assert o.epoch == dt.datetime(2022, 8, 28, 4, 9, 32, tzinfo=UTC)
    np.testing.assert_allclose(o.positions[0], [-5137222.638592, -3309927.344120, -3575280.582408])
    np.testing.assert_allclose(o.velocities[0], [-4047.709050, -607.185545, 6388.038264])
    r = read_eof(res)
    assert r.source.startswith("RESORB ") and r.times.size == 1186
    # |r| of a Sentinel-1 orbit: ~7 060-7 080 km
    radius = np.linalg.norm(r.positions, axis=1)
    assert 7.0e6 < radius.min() and radius.max() < 7.1e6


@pytest.mark.parametrize("kind", ["POEORB", "RESORB"])
def test_eof_held_out_state_vectors(fixtures_dir, kind):
    path = next((fixtures_dir / "orbits").glob(f"*{kind}*.EOF"))
    o = read_eof(path)
    errs, verrs = [], []
    for k in range(20, o.times.size - 20, max(1, o.times.size // 15)):
        keep = np.ones(o.times.size, bool)
        keep[k] = False
        sub = Orbit(o.times[keep], o.positions[keep], o.velocities[keep], epoch=o.epoch)
        errs.append(np.linalg.norm(sub.position(o.times[k])[0] - o.positions[k]))
        verrs.append(np.linalg.norm(sub.velocity(o.times[k])[0] - o.velocities[k]))
    assert max(errs) < 0.01, max(errs)  # < 1 cm with a 20 s gap around the held-out vector
    assert max(verrs) < 1e-4


def test_find_eof_prefers_precise_and_checks_coverage(fixtures_dir, tmp_path):
    poe, res = _files(fixtures_dir)
    shutil.copy(poe, tmp_path / poe.name)
    shutil.copy(res, tmp_path / res.name)
    # a restituted file with the same validity and content as the precise one
    fake_res = poe.name.replace("POEORB", "RESORB")
    shutil.copy(poe, tmp_path / fake_res)
    start = dt.datetime(2022, 8, 28, 4, 20, 0, tzinfo=UTC)
    orbit, note = find_eof(tmp_path, "S1A", start, start + dt.timedelta(seconds=25))
    assert orbit is not None and note == f"POEORB {poe.name}"
    assert orbit.covers(orbit.to_seconds(start), orbit.to_seconds(start) + 25)
    # inside the restituted file's span only
    start = dt.datetime(2023, 8, 23, 15, 0, 0, tzinfo=UTC)
    orbit, note = find_eof(tmp_path, "S1A", start, start + dt.timedelta(seconds=25))
    assert note == f"RESORB {res.name}"
    # other mission, or a time no state vector covers (the POEORB fixture is trimmed: its
    # validity says 2022-08-27T22:59 but its vectors start at 04:09)
    assert find_eof(tmp_path, "S1B", start, start)[0] is None
    early = dt.datetime(2022, 8, 28, 0, 0, 0, tzinfo=UTC)
    orbit, note = find_eof(tmp_path, "S1A", early, early + dt.timedelta(seconds=25))
    assert orbit is None and "no S1A orbit file" in note
    info = eof_info(poe)
    assert info.kind == "POEORB" and info.mission == "S1A"
    assert info.start == dt.datetime(2022, 8, 27, 22, 59, 42, tzinfo=UTC)


def test_broken_eof_is_a_user_error(tmp_path):
    bad = tmp_path / "S1A_OPER_AUX_POEORB_OPOD_20220917T081749_V20220827T225942_20220829T005942.EOF"
    bad.write_text("<Earth_Explorer_File><Data_Block>")
    with pytest.raises(CorruptInputError):
        read_eof(bad)


def _write_eof(path, orbit, kind, shift_m=0.0):
    """An EOF file holding ``orbit``'s state vectors (positions shifted by shift_m in x)."""
    osvs = []
    for t, p, v in zip(orbit.times, orbit.positions, orbit.velocities):
        stamp = orbit.to_datetime(t).strftime("%Y-%m-%dT%H:%M:%S.%f")
        osvs.append(f"<OSV><UTC>UTC={stamp}</UTC><X unit=\"m\">{p[0] + shift_m:.6f}</X>"
                    f"<Y unit=\"m\">{p[1]:.6f}</Y><Z unit=\"m\">{p[2]:.6f}</Z>"
                    f"<VX unit=\"m/s\">{v[0]:.6f}</VX><VY unit=\"m/s\">{v[1]:.6f}</VY>"
                    f"<VZ unit=\"m/s\">{v[2]:.6f}</VZ></OSV>")
    path.write_text(
        "<Earth_Explorer_File><Earth_Explorer_Header><Fixed_Header>"
        f"<File_Type>AUX_{kind}</File_Type></Fixed_Header></Earth_Explorer_Header>"
        f"<Data_Block type=\"xml\"><List_of_OSVs count=\"{len(osvs)}\">{''.join(osvs)}"
        "</List_of_OSVs></Data_Block></Earth_Explorer_File>")


def test_with_orbit_uses_covering_precise_file(fixtures_dir, tmp_path):
    from sarflow.sentinel1 import open_product

    prod = open_product(next((fixtures_dir / "s1").glob("S1B*.SAFE")))
    orbit = prod.orbit
    lo = orbit.to_datetime(orbit.start).strftime("%Y%m%dT%H%M%S")
    hi = orbit.to_datetime(orbit.stop).strftime("%Y%m%dT%H%M%S")
    poe = tmp_path / f"S1B_OPER_AUX_POEORB_OPOD_20220101T000000_V{lo}_{hi}.EOF"
    res = tmp_path / f"S1B_OPER_AUX_RESORB_OPOD_20220101T000000_V{lo}_{hi}.EOF"
    other = tmp_path / f"S1A_OPER_AUX_POEORB_OPOD_20220101T000000_V{lo}_{hi}.EOF"
    _write_eof(poe, orbit, "POEORB")
    _write_eof(res, orbit, "RESORB", shift_m=50.0)
    _write_eof(other, orbit, "POEORB", shift_m=500.0)
    moved = prod.with_orbit(tmp_path)
    assert moved.orbit_source == f"POEORB {poe.name}" and not moved.notes
    assert prod.orbit_source == "annotation"
    g = prod.swath().geolocation_grid
    l0, p0 = prod.image_coordinates(g.latitude, g.longitude, g.height)
    l1, p1 = moved.image_coordinates(g.latitude, g.longitude, g.height)
    assert np.abs(l1 - l0).max() < 1e-3 and np.abs(p1 - p0).max() < 1e-3
    # the restituted file alone: used, and its 50 m shift moves the geometry
    only_res = prod.with_orbit(res)
    assert only_res.orbit_source == f"RESORB {res.name}"
    _, p2 = only_res.image_coordinates(g.latitude, g.longitude, g.height)
    assert np.abs(p2 - p0).max() > 0.5
