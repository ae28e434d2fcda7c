"""Synthetic Sentinel-1 orbits: a circular, sun-synchronous-inclination orbit at about
693 km, placed so that a given point is seen right-looking at a chosen incidence angle on an
ascending or descending pass, and written out as annotation-style state vectors.

Repeat passes (``SimulationSettings.orbit_tube_m``): Sentinel-1's orbit is kept inside an
Earth-fixed tube of 50 m (rms) radius around its nominal path (ESA, Sentinel-1 mission
description on eoPortal; Barat et al., "Expected interferometric baseline statistics for
Sentinel-1", Living Planet Symposium 2013), so repeat passes differ by up to about 100 m
across track and radially.  Each date's orbit is the pass's nominal orbit moved, at the
scene centre time, by a displacement drawn uniformly in the disc of diameter
``orbit_tube_m`` perpendicular to the velocity (radial and cross-track; along-track offsets
are timing, absorbed by the annotation's times).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ..sentinel1 import Orbit, geodetic_to_ecef

MU = 3.986004418e14
"""Earth's gravitational parameter (m^3/s^2)."""
OMEGA_E = 7.2921158553e-5
"""Earth's rotation rate (rad/s)."""
SEMI_MAJOR = 7071009.0
"""Sentinel-1's orbit: about 693 km above the equator."""
INCLINATION = math.radians(98.18)
STATE_VECTOR_SPACING = 10.0
"""Seconds between annotation state vectors, as in IPF 3.x products."""


@dataclass(frozen=True)
class CircularOrbit:
    """A circular orbit in an inertial frame that coincides with ECEF at ``t_ref``.

    ``raan`` (rad) is the right ascension of the ascending node in that frame and ``u0``
    the argument of latitude at ``t_ref``.
    """

    raan: float
    u0: float
    t_ref: dt.datetime
    a: float = SEMI_MAJOR
    inc: float = INCLINATION

    @property
    def mean_motion(self) -> float:
        return math.sqrt(MU / self.a ** 3)

    def state(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ECEF position and velocity (N, 3) at ``tau`` seconds after ``t_ref``."""
        tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        n = self.mean_motion
        u = self.u0 + n * tau
        co, so, ci, si = math.cos(self.raan), math.sin(self.raan), math.cos(self.inc), math.sin(self.inc)
        cu, su = np.cos(u), np.sin(u)
        r = self.a * np.stack([co * cu - so * su * ci, so * cu + co * su * ci, su * si], axis=1)
        v = self.a * n * np.stack([-co * su - so * cu * ci, -so * su + co * cu * ci, cu * si], axis=1)
        th = OMEGA_E * tau
        c, s = np.cos(th), np.sin(th)
        rx = c * r[:, 0] + s * r[:, 1]
        ry = -s * r[:, 0] + c * r[:, 1]
        vx = c * v[:, 0] + s * v[:, 1]
        vy = -s * v[:, 0] + c * v[:, 1]
        pos = np.stack([rx, ry, r[:, 2]], axis=1)
        vel = np.stack([vx + OMEGA_E * ry, vy - OMEGA_E * rx, v[:, 2]], axis=1)
        return pos, vel

    def ascending_node_time(self) -> dt.datetime:
        """The last ascending-node crossing at or before ``t_ref``."""
        n = self.mean_motion
        u = self.u0 % (2 * math.pi)
        return self.t_ref - dt.timedelta(seconds=u / n)


def displaced(orbit: CircularOrbit, radial_m: float, cross_m: float) -> CircularOrbit:
    """The orbit moved by ``radial_m`` (up) and ``cross_m`` (along r x v) at ``t_ref``, with
    no along-track offset: a new radius, and inclination, node and argument of latitude
    solved so that the position at ``t_ref`` is displaced exactly as asked."""
    from scipy.optimize import least_squares

    pos0, vel0 = orbit.state(np.zeros(1))
    r_hat = pos0[0] / np.linalg.norm(pos0[0])
    c_hat = np.cross(pos0[0], vel0[0])
    c_hat /= np.linalg.norm(c_hat)
    a_hat = np.cross(c_hat, r_hat)
    target = pos0[0] + radial_m * r_hat + cross_m * c_hat
    a = orbit.a + radial_m

    def make(x: np.ndarray) -> CircularOrbit:
        return CircularOrbit(raan=orbit.raan + x[0] * 1e-6, u0=orbit.u0 + x[1] * 1e-6,
                             t_ref=orbit.t_ref, a=a, inc=orbit.inc + x[2] * 1e-6)

    def resid(x: np.ndarray) -> np.ndarray:
        p = make(x).state(np.zeros(1))[0][0]
        d = p - target
        return np.array([d @ r_hat, d @ c_hat, d @ a_hat])

    sol = least_squares(resid, np.zeros(3), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    out = make(sol.x)
    if np.abs(resid(sol.x)).max() > 1e-3:
        raise RuntimeError("could not displace the orbit within 1 mm")
    return out


def tube_offset(rng: np.random.Generator, tube_m: float) -> tuple[float, float]:
    """(radial, cross-track) offset (m) drawn uniformly in the disc of diameter ``tube_m``."""
    r = 0.5 * tube_m * math.sqrt(float(rng.random()))
    th = 2.0 * math.pi * float(rng.random())
    return r * math.cos(th), r * math.sin(th)


def _look(orbit: CircularOrbit, target: np.ndarray) -> tuple[float, float, float]:
    """(normalised Doppler, incidence angle (rad), side: +1 right / -1 left) at t_ref."""
    pos, vel = orbit.state(np.zeros(1))
    d = target - pos[0]
    r = np.linalg.norm(d)
    dop = float(vel[0] @ d / (np.linalg.norm(vel[0]) * r))
    normal = target / np.linalg.norm(target)  # geocentric is enough to place the orbit
    inc = math.acos(float(-d @ normal) / r)
    side = float(np.sign(np.cross(vel[0], pos[0]) @ d))  # right of track: v x r direction
    return dop, inc, side


def design_orbit(lon: float, lat: float, height: float, incidence_deg: float,
                 pass_direction: str, t_ref: dt.datetime) -> CircularOrbit:
    """The circular orbit that sees (lon, lat, height) at zero Doppler at ``t_ref``,
    right-looking at ``incidence_deg`` on the ellipsoid, on the given pass."""
    target = geodetic_to_ecef(lat, lon, height)[0]
    phi = math.atan2(target[2], math.hypot(target[0], target[1]))
    u_asc = math.asin(max(-1.0, min(1.0, math.sin(phi) / math.sin(INCLINATION))))
    ascending = pass_direction.upper().startswith("A")
    u0 = u_asc if ascending else math.pi - u_asc
    beta = math.asin(6371e3 * math.sin(math.radians(incidence_deg)) / SEMI_MAJOR)
    alpha = math.radians(incidence_deg) - beta  # Earth angle between nadir and target
    lam = math.atan2(target[1], target[0])
    # right-looking: the track lies west of the target ascending, east descending
    best = None
    for sign in (-1.0, 1.0):
        raan0 = lam + sign * alpha / max(math.cos(phi), 0.1)
        guess = _node_longitude(u0, raan0, lam)
        def resid(x: np.ndarray) -> list[float]:
            o = CircularOrbit(raan=x[0], u0=x[1], t_ref=t_ref)
            dop, inc, _ = _look(o, target)
            return [dop * 10.0, inc - math.radians(incidence_deg)]
        sol = least_squares(resid, [guess, u0], xtol=1e-14, ftol=1e-14, gtol=1e-14)
        o = CircularOrbit(raan=float(sol.x[0]), u0=float(sol.x[1]), t_ref=t_ref)
        dop, inc, side = _look(o, target)
        ok = abs(dop) < 1e-9 and abs(inc - math.radians(incidence_deg)) < 1e-9 and side > 0
        vz = o.state(np.zeros(1))[1][0, 2]
        if ok and (vz > 0) == ascending:
            best = o
            break
    if best is None:
        raise RuntimeError(f"no right-looking {pass_direction} orbit found for ({lon}, {lat})")
    return best


def _node_longitude(u0: float, raan_target: float, lam: float) -> float:
    """A RAAN that puts the sub-satellite point at t_ref near longitude ``raan_target``."""
    inc = INCLINATION
    # longitude of the satellite relative to the node for argument of latitude u0
    dl = math.atan2(math.sin(u0) * math.cos(inc), math.cos(u0))
    return raan_target - dl


def state_vectors(orbit: CircularOrbit, start: dt.datetime, stop: dt.datetime
                  ) -> tuple[list[dt.datetime], np.ndarray, np.ndarray]:
    """Annotation state vectors every 10 s covering [start, stop] plus 60 s either side,
    rounded as ESA writes them (mm, um/s, microseconds)."""
    t0 = start - dt.timedelta(seconds=60)
    n = int(math.ceil(((stop - start).total_seconds() + 120.0) / STATE_VECTOR_SPACING)) + 1
    times = [t0 + dt.timedelta(seconds=STATE_VECTOR_SPACING * k) for k in range(n)]
    tau = np.array([(t - orbit.t_ref).total_seconds() for t in times])
    pos, vel = orbit.state(tau)
    return times, np.round(pos, 3), np.round(vel, 6)


def annotation_orbit(times: list[dt.datetime], pos: np.ndarray, vel: np.ndarray) -> Orbit:
    """The :class:`~sarflow.sentinel1.Orbit` a reader builds from these state vectors."""
    return Orbit.from_datetimes(times, pos, vel, source="annotation")
