"""Satellite orbits: state vectors and their smooth interpolation.

Times are float seconds since ``orbit.epoch`` (a tz-aware UTC datetime), so geometry code
works on plain numpy arrays.  State vectors 1 s apart (annotations of older products) are
interpolated by cubic Hermite splines (positions and velocities at both ends); vectors 10 s
apart (newer annotations, POEORB/RESORB files) by 8-point Lagrange polynomials, applied to
positions and velocities separately.  Both are accurate to millimetres.
"""

from __future__ import annotations

import datetime as _dt
from typing import Sequence

import numpy as np

from ..errors import InputError

UTC = _dt.timezone.utc
_LAGRANGE_POINTS = 8
_HERMITE_MAX_SPACING = 2.0  # s: vectors at most this far apart are Hermite-interpolated


def as_utc(value: _dt.datetime | str | np.datetime64) -> _dt.datetime:
    """A tz-aware UTC datetime from a datetime (naive = UTC), ISO string or datetime64."""
    if isinstance(value, np.datetime64):
        ns = int(value.astype("datetime64[ns]").astype(np.int64))
        return _dt.datetime(1970, 1, 1, tzinfo=UTC) + _dt.timedelta(microseconds=ns / 1000.0)
    if isinstance(value, str):
        text = value.strip()
        for prefix in ("UTC=", "TAI=", "UT1="):
            if text.startswith(prefix):
                text = text[len(prefix):]
        text = text.rstrip("Z")
        value = _dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Orbit:
    """ECEF state vectors (m, m/s) at ``times`` (s since ``epoch``), interpolated smoothly."""

    def __init__(self, times: np.ndarray, positions: np.ndarray, velocities: np.ndarray,
                 epoch: _dt.datetime | None = None, source: str = "annotation") -> None:
        times = np.asarray(times, dtype=np.float64).ravel()
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        velocities = np.asarray(velocities, dtype=np.float64).reshape(-1, 3)
        if not (times.size == positions.shape[0] == velocities.shape[0]):
            raise InputError("orbit: times, positions and velocities differ in length")
        if times.size < 2:
            raise InputError("orbit: at least 2 state vectors are needed")
        order = np.argsort(times, kind="stable")
        times, positions, velocities = times[order], positions[order], velocities[order]
        keep = np.concatenate([[True], np.diff(times) > 0])  # drop duplicated epochs
        self.times = times[keep]
        self.positions = positions[keep]
        self.velocities = velocities[keep]
        self.epoch = as_utc(epoch) if epoch is not None else _dt.datetime(2000, 1, 1, tzinfo=UTC)
        self.source = source
        spacing = float(np.median(np.diff(self.times)))
        self.spacing = spacing
        self.method = ("hermite" if spacing <= _HERMITE_MAX_SPACING or self.times.size < _LAGRANGE_POINTS
                       else "lagrange")

    # -- construction and time ------------------------------------------------------------
    @classmethod
    def from_datetimes(cls, datetimes: Sequence[_dt.datetime | str], positions: np.ndarray,
                       velocities: np.ndarray, epoch: _dt.datetime | None = None,
                       source: str = "annotation") -> "Orbit":
        """An orbit from UTC datetimes; the epoch defaults to the first state vector's time."""
        stamps = [as_utc(d) for d in datetimes]
        if not stamps:
            raise InputError("orbit: no state vectors")
        ep = as_utc(epoch) if epoch is not None else min(stamps)
        times = np.array([(s - ep).total_seconds() for s in stamps])
        return cls(times, positions, velocities, epoch=ep, source=source)

    def to_seconds(self, when: _dt.datetime | str | np.ndarray | Sequence) -> float | np.ndarray:
        """Seconds since the epoch of one UTC datetime (float) or of an array of datetime64."""
        if isinstance(when, np.ndarray) and np.issubdtype(when.dtype, np.datetime64):
            ep = np.datetime64(self.epoch.replace(tzinfo=None), "ns")
            return (when.astype("datetime64[ns]") - ep).astype(np.int64) * 1e-9
        if isinstance(when, (list, tuple)):
            return np.array([self.to_seconds(w) for w in when])
        return (as_utc(when) - self.epoch).total_seconds()

    def to_datetime(self, seconds: float) -> _dt.datetime:
        """The UTC datetime ``seconds`` after the epoch."""
        return self.epoch + _dt.timedelta(seconds=float(seconds))

    @property
    def start(self) -> float:
        """First state vector time (s since epoch)."""
        return float(self.times[0])

    @property
    def stop(self) -> float:
        """Last state vector time (s since epoch)."""
        return float(self.times[-1])

    @property
    def mid_time(self) -> float:
        """Middle of the state vectors' time span (a starting point for zero Doppler)."""
        return 0.5 * (self.start + self.stop)

    def covers(self, t0: float, t1: float) -> bool:
        """Whether the state vectors span [t0, t1] (s since epoch)."""
        return self.start <= t0 and t1 <= self.stop

    def shifted(self, epoch: _dt.datetime) -> "Orbit":
        """The same orbit with times counted from another epoch."""
        dt = (as_utc(epoch) - self.epoch).total_seconds()
        return Orbit(self.times - dt, self.positions, self.velocities, epoch=epoch,
                     source=self.source)

    def subset(self, t0: float, t1: float, margin: int = 6) -> "Orbit":
        """The state vectors spanning [t0, t1] plus ``margin`` vectors either side."""
        i0 = max(int(np.searchsorted(self.times, t0)) - margin, 0)
        i1 = min(int(np.searchsorted(self.times, t1)) + margin, self.times.size)
        return Orbit(self.times[i0:i1], self.positions[i0:i1], self.velocities[i0:i1],
                     epoch=self.epoch, source=self.source)

    # -- interpolation --------------------------------------------------------------------
    def position(self, t: np.ndarray | float) -> np.ndarray:
        """ECEF position (N, 3) in m at times ``t`` (s since epoch)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64)).ravel()
        if self.method == "hermite":
            return self._hermite(t, 0)
        return self._lagrange(self.positions, t)

    def velocity(self, t: np.ndarray | float) -> np.ndarray:
        """ECEF velocity (N, 3) in m/s at times ``t``."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64)).ravel()
        if self.method == "hermite":
            return self._hermite(t, 1)
        return self._lagrange(self.velocities, t)

    def acceleration(self, t: np.ndarray | float) -> np.ndarray:
        """ECEF acceleration (N, 3) in m/s^2 (for Newton steps; about 1e-6 relative)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64)).ravel()
        if self.method == "hermite":
            return self._hermite(t, 2)
        d = 1e-2
        return (self._lagrange(self.velocities, t + d) - self._lagrange(self.velocities, t - d)) / (2 * d)

    def _hermite(self, t: np.ndarray, deriv: int) -> np.ndarray:
        """Cubic Hermite spline of the positions (derivative ``deriv``) between neighbours."""
        n = self.times.size
        i = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, n - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        h = (t1 - t0)[:, None]
        s = ((t - t0) / (t1 - t0))[:, None]
        p0, p1 = self.positions[i], self.positions[i + 1]
        m0, m1 = self.velocities[i] * h, self.velocities[i + 1] * h
        if deriv == 0:
            s2, s3 = s * s, s * s * s
            return ((2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0
                    + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1)
        if deriv == 1:
            s2 = s * s
            return ((6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * m0
                    + (-6 * s2 + 6 * s) * p1 + (3 * s2 - 2 * s) * m1) / h
        return ((12 * s - 6) * p0 + (6 * s - 4) * m0 + (-12 * s + 6) * p1
                + (6 * s - 2) * m1) / (h * h)

    def _lagrange(self, values: np.ndarray, t: np.ndarray) -> np.ndarray:
        """8-point Lagrange interpolation of ``values`` (n, 3) centred on each time."""
        n, k = self.times.size, _LAGRANGE_POINTS
        i = np.searchsorted(self.times, t, side="right") - 1
        s = np.clip(i - (k // 2 - 1), 0, n - k)
        idx = s[:, None] + np.arange(k)[None, :]
        tn = self.times[idx]  # (N, k)
        dt = t[:, None] - tn
        w = np.ones_like(tn)
        for j in range(k):
            for m in range(k):
                if m != j:
                    w[:, j] *= dt[:, m] / (tn[:, j] - tn[:, m])
        return np.einsum("nk,nkc->nc", w, values[idx])

    def polynomial(self, t0: float, t1: float, degree: int = 9) -> "PolyOrbit":
        """A Chebyshev fit of this orbit over [t0, t1]: identical to mm, much faster to evaluate."""
        ts = np.linspace(t0, t1, max(8 * degree, int((t1 - t0) / 0.5) + 1))
        pos = self.position(ts)
        u = (2.0 * ts - (t0 + t1)) / (t1 - t0)
        coef = np.polynomial.chebyshev.chebfit(u, pos, degree)
        return PolyOrbit(coef, t0, t1, self.epoch, self.source)

    def __repr__(self) -> str:
        return (f"Orbit({self.times.size} vectors, {self.spacing:g} s apart, {self.method}, "
                f"epoch {self.epoch.isoformat()}, source {self.source!r})")


class PolyOrbit:
    """An orbit as one polynomial in time over a short span (see :meth:`Orbit.polynomial`):
    monomials in u = (t - mid) / half-span, evaluated by Horner's rule on (N, 3) arrays."""

    def __init__(self, coef: np.ndarray, t0: float, t1: float, epoch: _dt.datetime,
                 source: str) -> None:
        cheb = np.polynomial.chebyshev
        self.t0, self.t1 = float(t0), float(t1)
        self.epoch = epoch
        self.source = source
        self._scale = 2.0 / (self.t1 - self.t0)
        n = coef.shape[0]
        self.coef = np.stack([np.pad(c, (0, n - c.size)) for c in
                              (cheb.cheb2poly(coef[:, j]) for j in range(3))], axis=1)
        self.dcoef = self.coef[1:] * np.arange(1, len(self.coef))[:, None] * self._scale
        self.ddcoef = self.dcoef[1:] * np.arange(1, len(self.dcoef))[:, None] * self._scale
        self.dddcoef = self.ddcoef[1:] * np.arange(1, len(self.ddcoef))[:, None] * self._scale

    @property
    def mid_time(self) -> float:
        """Middle of the fitted span."""
        return 0.5 * (self.t0 + self.t1)

    def _eval(self, coef: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        u = (np.atleast_1d(np.asarray(t, dtype=np.float64)).ravel() - self.mid_time) * self._scale
        out = np.empty((u.shape[0], 3))
        for j in range(3):
            acc = np.full(u.shape[0], coef[-1, j])
            for c in coef[-2::-1, j]:
                acc *= u
                acc += c
            out[:, j] = acc
        return out

    def position(self, t: np.ndarray | float) -> np.ndarray:
        """ECEF position (N, 3)."""
        return self._eval(self.coef, t)

    def velocity(self, t: np.ndarray | float) -> np.ndarray:
        """ECEF velocity (N, 3)."""
        return self._eval(self.dcoef, t)

    def acceleration(self, t: np.ndarray | float) -> np.ndarray:
        """ECEF acceleration (N, 3)."""
        return self._eval(self.ddcoef, t)

    def jerk(self, t: np.ndarray | float) -> np.ndarray:
        """Third time derivative of the position (N, 3)."""
        if len(self.dddcoef) == 0:
            return np.zeros((np.size(t), 3))
        return self._eval(self.dddcoef, t)
