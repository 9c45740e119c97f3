"""Direction conventions, the spherical triangulation and the dense ring grid.

Convention (SOFA, head-related): azimuth in degrees, 0 = front, positive =
counter-clockwise seen from above, i.e. +90 = LEFT, normalised to (-180, 180];
elevation in degrees, -90 (below) .. +90 (above). Cartesian: x front, y left,
z up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from scipy import sparse

__all__ = [
    "wrap_azimuth",
    "sph_to_cart",
    "cart_to_sph",
    "SphericalTriangulation",
    "RingGrid",
]


def wrap_azimuth(az_deg: ArrayLike) -> NDArray[np.float64]:
    """Wrap azimuths to (-180, 180] degrees.

    Parameters
    ----------
    az_deg : array_like
        Azimuth in degrees, any range.

    Returns
    -------
    ndarray
        Azimuth in degrees in (-180, 180]; 270 -> -90, -180 -> 180.
    """
    a = np.asarray(az_deg, dtype=np.float64)
    w = np.mod(a, 360.0)
    w = np.where(w > 180.0, w - 360.0, w)
    # mod() maps -180 to 180 already; tidy -0.0 so outputs are deterministic.
    return w + 0.0


def sph_to_cart(az_deg: ArrayLike, el_deg: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors for directions.

    Parameters
    ----------
    az_deg, el_deg : array_like
        Azimuth and elevation in degrees (broadcast together).

    Returns
    -------
    ndarray, shape (..., 3)
        Unit vectors (x front, y left, z up).
    """
    az = np.deg2rad(np.asarray(az_deg, dtype=np.float64))
    el = np.deg2rad(np.asarray(el_deg, dtype=np.float64))
    az, el = np.broadcast_arrays(az, el)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def cart_to_sph(xyz: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Spherical coordinates of cartesian points.

    Parameters
    ----------
    xyz : array_like, shape (..., 3)
        Points in metres (x front, y left, z up).

    Returns
    -------
    az_deg, el_deg, dist_m : ndarray
        Azimuth in degrees (-180, 180], elevation in degrees, radius in metres.
    """
    p = np.asarray(xyz, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    az = wrap_azimuth(np.rad2deg(np.arctan2(y, x)))
    el = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    return az, el, np.sqrt(x * x + y * y + z * z)


class SphericalTriangulation:
    """Delaunay triangulation of directions on the unit sphere.

    The convex hull of unit vectors is the spherical Delaunay triangulation.
    Weights are barycentric coordinates of the query direction's gnomonic
    projection onto the enclosing facet: non-negative, summing to 1, and
    exactly 1 at a vertex, so interpolation reproduces measured data.

    Regular measurement grids (like KEMAR's rings) contain concyclic, hence
    coplanar, quadrilaterals that qhull splits along an arbitrary diagonal,
    which would make interpolation left/right asymmetric. Inside such a quad
    the weights are the mean of both diagonal splits (4 vertices).

    Parameters
    ----------
    az_deg, el_deg : array_like, shape (M,)
        Vertex directions in degrees. They must surround the origin (cover
        the sphere); add virtual points first if they do not.

    Raises
    ------
    ValueError
        If the directions are degenerate or leave the origin outside the hull.
    """

    def __init__(self, az_deg: ArrayLike, el_deg: ArrayLike) -> None:
        self.points = sph_to_cart(az_deg, el_deg).reshape(-1, 3)
        if len(self.points) < 4:
            raise ValueError("need at least 4 directions to triangulate the sphere")
        from scipy.spatial import ConvexHull  # here: ~50 ms to import, and a render never needs it

        try:
            hull = ConvexHull(self.points)
        except Exception as exc:  # scipy raises QhullError (flat/degenerate input)
            raise ValueError(f"directions cannot be triangulated: {exc}") from None
        eq = hull.equations
        if not np.all(eq[:, 3] < -1e-9):
            raise ValueError("directions do not surround the listener (origin not inside their hull)")
        self.simplices: NDArray[np.intp] = hull.simplices
        self._neighbors = hull.neighbors  # [f, i] = facet across the edge opposite vertex i
        self._normals = eq[:, :3] / -eq[:, 3:]
        # For p = V^T w with facet vertices V (rows); precompute the inverses.
        self._inv = np.linalg.inv(np.transpose(self.points[self.simplices], (0, 2, 1)))
        # Edge (opposite vertex i) whose neighbour lies in the same plane, or -1.
        same = np.all(np.abs(eq[self._neighbors] - eq[:, None, :]) < 1e-10, axis=2)
        self._twin_edge = np.where(same.any(axis=1), np.argmax(same, axis=1), -1)

    def _locate(self, q: NDArray[np.float64], chunk: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Enclosing facet and its barycentric weights for unit vectors q."""
        facet = np.empty(len(q), dtype=np.intp)
        for s in range(0, len(q), chunk):
            # The ray from the origin leaves the hull through the facet whose
            # plane it meets first, i.e. the largest n.p / -offset.
            facet[s : s + chunk] = np.argmax(q[s : s + chunk] @ self._normals.T, axis=1)
        w = np.einsum("kij,kj->ki", self._inv[facet], q)
        # A coplanar twin ties with the right facet; if the argmax picked the
        # twin (a weight < 0), walk across the edge opposite the most
        # negative weight until the point is inside.
        for _ in range(len(self.simplices)):
            bad = np.nonzero(w.min(axis=1) < -1e-9)[0]
            if bad.size == 0:
                break
            facet[bad] = self._neighbors[facet[bad], np.argmin(w[bad], axis=1)]
            w[bad] = np.einsum("kij,kj->ki", self._inv[facet[bad]], q[bad])
        return facet, w

    def weights(self, az_deg: ArrayLike, el_deg: ArrayLike, chunk: int = 2048) -> sparse.csr_matrix:
        """Interpolation matrix from vertices to query directions.

        Parameters
        ----------
        az_deg, el_deg : array_like, shape (K,)
            Query directions in degrees.
        chunk : int
            Queries processed at once (bounds the K x facets temporary).

        Returns
        -------
        scipy.sparse.csr_matrix, shape (K, M)
            Row k holds the (3, or 4 inside a coplanar quad) non-negative
            weights of query k, summing to 1.
        """
        from scipy import sparse  # here: scipy.sparse takes ~0.1 s to import, and a render never needs it

        q = sph_to_cart(az_deg, el_deg).reshape(-1, 3)
        facet, w = self._locate(q, chunk)
        cols = np.concatenate([self.simplices[facet], self.simplices[facet][:, :1]], axis=1)
        w = np.concatenate([w, np.zeros((len(q), 1))], axis=1)

        k = np.nonzero(self._twin_edge[facet] >= 0)[0]
        if k.size:
            f, i = facet[k], self._twin_edge[facet[k]]
            tri = self.simplices[f]
            apex = tri[np.arange(k.size), i]  # vertex opposite the shared edge
            shared = np.where(np.arange(3) == i[:, None], -1, tri)
            shared = np.sort(shared, axis=1)[:, 1:]  # the two shared vertices
            twin = self.simplices[self._neighbors[f, i]]
            other = twin.sum(axis=1) - shared.sum(axis=1)  # twin's vertex not in f
            # The other diagonal (apex-other) splits the quad into two
            # triangles; take the one containing the point.
            best: tuple[np.ndarray, np.ndarray] | None = None
            for side in (0, 1):
                verts = np.stack([apex, other, shared[:, side]], axis=1)
                ws = np.linalg.solve(np.transpose(self.points[verts], (0, 2, 1)), q[k][..., None])[..., 0]
                if best is None:
                    best = (verts, ws)
                else:
                    take = ws.min(axis=1) > best[1].min(axis=1)
                    best = (np.where(take[:, None], verts, best[0]), np.where(take[:, None], ws, best[1]))
            assert best is not None
            verts, ws = best
            # Mean of the two splits over the quad's 4 vertices.
            cols[k] = np.concatenate([tri, other[:, None]], axis=1)
            alt = np.zeros((k.size, 4))
            for j in range(3):
                alt += np.where(cols[k] == verts[:, j : j + 1], ws[:, j : j + 1], 0.0)
            w[k] = 0.5 * (w[k] + alt)

        w = np.clip(w, 0.0, None)  # round-off on edges can give -1e-17
        w /= w.sum(axis=1, keepdims=True)
        rows = np.repeat(np.arange(len(q)), 4)
        return sparse.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(len(q), len(self.points)))


@dataclass(frozen=True, eq=False)
class RingGrid:
    """Dense, near-uniform direction grid made of constant-elevation rings.

    Rings sit every ``step_deg`` in elevation from -90 to +90; ring ``k``
    holds ``max(1, round(360 cos(el_k) / step_deg))`` equally spaced
    azimuths starting at 0, so neighbouring points are ~``step_deg`` apart
    everywhere and lookups are pure index arithmetic (no search).

    Parameters
    ----------
    step_deg : float
        Grid spacing in degrees; 180 / step_deg must be an integer.
    """

    step_deg: float
    ring_el: NDArray[np.float64] = field(init=False, repr=False)
    ring_count: NDArray[np.intp] = field(init=False, repr=False)
    ring_start: NDArray[np.intp] = field(init=False, repr=False)
    az_deg: NDArray[np.float64] = field(init=False, repr=False)
    el_deg: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Lay out the rings (read-only arrays); ``step_deg`` must divide 180."""
        n_rings = 180.0 / self.step_deg
        if self.step_deg <= 0 or abs(n_rings - round(n_rings)) > 1e-9:
            raise ValueError(f"step_deg must divide 180, got {self.step_deg}")
        ring_el = -90.0 + self.step_deg * np.arange(round(n_rings) + 1)
        count = np.maximum(1, np.rint(360.0 * np.cos(np.deg2rad(ring_el)) / self.step_deg)).astype(np.intp)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.intp)
        az = np.concatenate([np.arange(n) * (360.0 / n) for n in count])
        el = np.repeat(ring_el, count)
        for name, value in [
            ("ring_el", ring_el),
            ("ring_count", count),
            ("ring_start", start),
            ("az_deg", wrap_azimuth(az)),
            ("el_deg", el),
        ]:
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def size(self) -> int:
        """Number of grid points."""
        return int(self.az_deg.size)

    def _ring_pos(self, el_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        return (np.clip(el_deg, -90.0, 90.0) + 90.0) / self.step_deg

    def _az_pos(self, az_deg: NDArray[np.float64], ring: NDArray[np.intp]) -> NDArray[np.float64]:
        return np.mod(az_deg, 360.0) * self.ring_count[ring] / 360.0

    def nearest(self, az_deg: ArrayLike, el_deg: ArrayLike) -> NDArray[np.intp]:
        """Index of the grid point nearest to each direction.

        Parameters
        ----------
        az_deg, el_deg : array_like
            Directions in degrees (broadcast together; elevation clipped to
            [-90, 90]).

        Returns
        -------
        ndarray of int
            Grid indices, broadcast shape of the inputs.
        """
        az, el = np.broadcast_arrays(np.asarray(az_deg, float), np.asarray(el_deg, float))
        ring = np.rint(self._ring_pos(el)).astype(np.intp)
        j = np.rint(self._az_pos(az, ring)).astype(np.intp) % self.ring_count[ring]
        return self.ring_start[ring] + j

    def bilinear(self, az_deg: ArrayLike, el_deg: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Four grid points and weights around each direction.

        Linear in elevation between the two enclosing rings and linear in
        azimuth within each ring; continuous everywhere, including across
        the +-180 seam and at the poles.

        Parameters
        ----------
        az_deg, el_deg : array_like
            Directions in degrees (broadcast together).

        Returns
        -------
        idx : ndarray of int, shape (..., 4)
            Grid indices.
        w : ndarray of float, shape (..., 4)
            Weights, non-negative, summing to 1.
        """
        az, el = np.broadcast_arrays(np.asarray(az_deg, float), np.asarray(el_deg, float))
        u = self._ring_pos(el)
        k0 = np.clip(np.floor(u).astype(np.intp), 0, len(self.ring_el) - 2)
        t = np.clip(u - k0, 0.0, 1.0)[..., None]
        rings = np.stack([k0, k0 + 1], axis=-1)  # (..., 2): lower, upper ring
        n = self.ring_count[rings]
        a = self._az_pos(az[..., None], rings)
        j0 = np.floor(a).astype(np.intp)
        s = (a - j0)[..., None]
        j = np.stack([j0, j0 + 1], axis=-1) % n[..., None]  # (..., ring, side)
        idx = self.ring_start[rings][..., None] + j
        w = np.concatenate([1.0 - t, t], axis=-1)[..., None] * np.concatenate([1.0 - s, s], axis=-1)
        return idx.reshape(az.shape + (4,)), w.reshape(az.shape + (4,))
