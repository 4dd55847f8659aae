"""Numba ray-tracing kernels for the procedural scenes (:mod:`hero_lite.scenes.synth`).

A scene is a flat list of primitives, each with a kind, a parameter row, a texture and a
specular term; the kernels take those as contiguous arrays. Everything is float64 scalar
arithmetic without ``fastmath`` (so LLVM does not reorder or fuse it) and every parallel
iteration owns its output row, so the same inputs give bit-identical pixels.

Primitive parameter rows ``params[k]`` (world units; the first three entries are always the centre):

- ``SPHERE``: centre xyz, radius.
- ``BOX``: centre xyz, half-extents xyz (axis aligned).
- ``TORUS``: centre xyz, major radius R, minor radius r, axis index (0 = x, 1 = y, 2 = z) of the
  symmetry axis. Intersected by sphere tracing its exact signed distance inside its bounding sphere.
- ``CAPSULE``: end point a xyz, end point b xyz, radius: every point within the radius of the
  segment a-b (a cylinder with hemispherical caps; wires, cables and legs). Its "centre" for
  textures is a.

Textures use ``u = (p - centre) * freq`` (per-axis frequencies, cycles per world unit):
``SOLID`` gives colour 0; ``CHECKER`` colour ``(floor u_x + floor u_y + floor u_z) mod 2``;
``STRIPES`` colour ``floor(u_x + u_y + u_z) mod 2`` (bands normal to ``freq``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

SPHERE = 0
BOX = 1
TORUS = 2
CAPSULE = 3

SOLID = 0
CHECKER = 1
STRIPES = 2


@njit(cache=True)
def hit_sphere(ox, oy, oz, dx, dy, dz, cx, cy, cz, radius, t_min):
    """Smallest ray parameter ``t > t_min`` where the unit-direction ray meets the sphere, else inf."""
    px = ox - cx
    py = oy - cy
    pz = oz - cz
    half_b = px * dx + py * dy + pz * dz
    c = px * px + py * py + pz * pz - radius * radius
    discriminant = half_b * half_b - c
    if discriminant < 0.0:
        return np.inf
    root = math.sqrt(discriminant)
    t = -half_b - root
    if t > t_min:
        return t
    t = -half_b + root
    if t > t_min:
        return t
    return np.inf


@njit(cache=True)
def _slab(origin, direction, low, high, t_near, t_far):
    """Clip ``[t_near, t_far]`` to one axis slab ``low <= origin + t * direction <= high``."""
    if abs(direction) < 1e-300:
        if origin < low or origin > high:
            return np.inf, -np.inf
        return t_near, t_far
    t0 = (low - origin) / direction
    t1 = (high - origin) / direction
    if t0 > t1:
        t0, t1 = t1, t0
    return max(t_near, t0), min(t_far, t1)


@njit(cache=True)
def hit_box(ox, oy, oz, dx, dy, dz, cx, cy, cz, hx, hy, hz, t_min):
    """Smallest ``t > t_min`` where the ray meets the axis-aligned box's surface, else inf."""
    t_near, t_far = _slab(ox, dx, cx - hx, cx + hx, -np.inf, np.inf)
    t_near, t_far = _slab(oy, dy, cy - hy, cy + hy, t_near, t_far)
    t_near, t_far = _slab(oz, dz, cz - hz, cz + hz, t_near, t_far)
    if t_near > t_far:
        return np.inf
    if t_near > t_min:
        return t_near
    if t_far > t_min:
        return t_far
    return np.inf


@njit(cache=True)
def _to_torus_frame(x, y, z, axis):
    """Permute world offsets so the torus axis becomes the last coordinate."""
    if axis == 0:
        return y, z, x
    if axis == 1:
        return z, x, y
    return x, y, z


@njit(cache=True)
def _from_torus_frame(a, b, w, axis):
    if axis == 0:
        return w, a, b
    if axis == 1:
        return b, w, a
    return a, b, w


@njit(cache=True)
def torus_distance(a, b, w, major_radius, minor_radius):
    """Exact signed distance to a torus around the w axis, in its own (permuted) frame."""
    ring = math.sqrt(a * a + b * b) - major_radius
    return math.sqrt(ring * ring + w * w) - minor_radius


@njit(cache=True)
def hit_torus(ox, oy, oz, dx, dy, dz, cx, cy, cz, major_radius, minor_radius, axis, t_min):
    """First ``t > t_min`` on the torus by sphere tracing (converged to 1e-7), else inf.

    Tracing starts where the ray enters the bounding sphere of radius R + r and stops where it
    leaves it; rays grazing the silhouette that do not converge in 512 steps count as misses.
    """
    bound = major_radius + minor_radius
    t_enter = hit_sphere(ox, oy, oz, dx, dy, dz, cx, cy, cz, bound, -np.inf)
    if t_enter == np.inf:
        return np.inf
    px = ox - cx
    py = oy - cy
    pz = oz - cz
    half_b = px * dx + py * dy + pz * dz
    t_exit = -half_b + math.sqrt(max(half_b * half_b - (px * px + py * py + pz * pz - bound * bound), 0.0))
    oa, ob, ow = _to_torus_frame(px, py, pz, axis)
    da, db, dw = _to_torus_frame(dx, dy, dz, axis)
    t = max(t_enter, t_min)
    for _ in range(512):
        if t > t_exit:
            return np.inf
        distance = torus_distance(oa + t * da, ob + t * db, ow + t * dw, major_radius, minor_radius)
        if distance < 1e-7:
            return t
        t += distance
    return np.inf


@njit(cache=True)
def hit_capsule(ox, oy, oz, dx, dy, dz, ax, ay, az, bx, by, bz, radius, t_min):
    """Smallest ``t > t_min`` where the ray meets the capsule around segment a-b, else inf.

    The capsule is the union of the finite cylinder (hit where the projection on the axis falls
    inside the segment) and the two end spheres; the nearest of the three hits is its surface hit
    for rays starting outside it (cameras and offset shadow rays do).
    """
    best = hit_sphere(ox, oy, oz, dx, dy, dz, ax, ay, az, radius, t_min)
    best = min(best, hit_sphere(ox, oy, oz, dx, dy, dz, bx, by, bz, radius, t_min))
    ux = bx - ax
    uy = by - ay
    uz = bz - az
    length = math.sqrt(ux * ux + uy * uy + uz * uz)
    if length == 0.0:
        return best
    ux /= length
    uy /= length
    uz /= length
    # Components of the offset and the direction normal to the axis: |w + t e|^2 = radius^2.
    px = ox - ax
    py = oy - ay
    pz = oz - az
    p_along = px * ux + py * uy + pz * uz
    d_along = dx * ux + dy * uy + dz * uz
    wx = px - p_along * ux
    wy = py - p_along * uy
    wz = pz - p_along * uz
    ex = dx - d_along * ux
    ey = dy - d_along * uy
    ez = dz - d_along * uz
    a = ex * ex + ey * ey + ez * ez
    if a < 1e-18:
        return best
    half_b = wx * ex + wy * ey + wz * ez
    c = wx * wx + wy * wy + wz * wz - radius * radius
    discriminant = half_b * half_b - a * c
    if discriminant < 0.0:
        return best
    root = math.sqrt(discriminant)
    for t in ((-half_b - root) / a, (-half_b + root) / a):
        along = p_along + t * d_along
        if t > t_min and 0.0 <= along <= length and t < best:
            best = t
    return best


@njit(cache=True)
def hit_primitive(ox, oy, oz, dx, dy, dz, kind, params, t_min):
    """Dispatch on the primitive kind; ``params`` is that primitive's (8,) float64 row."""
    if kind == SPHERE:
        return hit_sphere(ox, oy, oz, dx, dy, dz, params[0], params[1], params[2], params[3], t_min)
    if kind == BOX:
        return hit_box(ox, oy, oz, dx, dy, dz, params[0], params[1], params[2], params[3], params[4], params[5], t_min)
    if kind == CAPSULE:
        return hit_capsule(
            ox, oy, oz, dx, dy, dz, params[0], params[1], params[2], params[3], params[4], params[5], params[6], t_min
        )
    return hit_torus(
        ox, oy, oz, dx, dy, dz, params[0], params[1], params[2], params[3], params[4], int(params[5]), t_min
    )


@njit(cache=True)
def closest_hit(ox, oy, oz, dx, dy, dz, kinds, params, t_min):
    """Nearest primitive along a ray.

    Returns
    -------
    t : float
        Ray parameter of the hit (world units for a unit direction), inf on a miss.
    index : int
        Index of the primitive hit, -1 on a miss. Ties go to the lower index.
    """
    best_t = np.inf
    best_index = -1
    for k in range(kinds.shape[0]):
        t = hit_primitive(ox, oy, oz, dx, dy, dz, kinds[k], params[k], t_min)
        if t < best_t:
            best_t = t
            best_index = k
    return best_t, best_index


@njit(cache=True)
def _any_hit(ox, oy, oz, dx, dy, dz, kinds, params, t_min):
    for k in range(kinds.shape[0]):
        if hit_primitive(ox, oy, oz, dx, dy, dz, kinds[k], params[k], t_min) < np.inf:
            return True
    return False


@njit(cache=True)
def surface_normal(px, py, pz, kind, params):
    """Outward unit normal of a primitive at a surface point (world units in, unit vector out)."""
    ox = px - params[0]
    oy = py - params[1]
    oz = pz - params[2]
    if kind == SPHERE:
        nx, ny, nz = ox, oy, oz
    elif kind == BOX:
        # The face is the axis where the point is relatively farthest out.
        qx = abs(ox) / params[3]
        qy = abs(oy) / params[4]
        qz = abs(oz) / params[5]
        nx = ny = nz = 0.0
        if qx >= qy and qx >= qz:
            nx = 1.0 if ox > 0 else -1.0
        elif qy >= qz:
            ny = 1.0 if oy > 0 else -1.0
        else:
            nz = 1.0 if oz > 0 else -1.0
    elif kind == CAPSULE:
        # Away from the nearest point of the segment.
        ux = params[3] - params[0]
        uy = params[4] - params[1]
        uz = params[5] - params[2]
        length_sq = ux * ux + uy * uy + uz * uz
        h = (ox * ux + oy * uy + oz * uz) / length_sq if length_sq > 0 else 0.0
        h = min(max(h, 0.0), 1.0)
        nx, ny, nz = ox - h * ux, oy - h * uy, oz - h * uz
    else:
        axis = int(params[5])
        a, b, w = _to_torus_frame(ox, oy, oz, axis)
        rho = math.sqrt(a * a + b * b)
        scale = 1.0 - params[3] / rho if rho > 0 else 0.0
        nx, ny, nz = _from_torus_frame(a * scale, b * scale, w, axis)
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / norm, ny / norm, nz / norm


@njit(cache=True)
def texture_parity(ux, uy, uz, texture_kind):
    """Which of a primitive's two colours (0 or 1) a texture coordinate gets."""
    if texture_kind == CHECKER:
        total = math.floor(ux) + math.floor(uy) + math.floor(uz)
    elif texture_kind == STRIPES:
        total = math.floor(ux + uy + uz)
    else:
        return 0
    return int(total - 2.0 * math.floor(0.5 * total))


@njit(cache=True)
def blinn_phong(nx, ny, nz, vx, vy, vz, lx, ly, lz, albedo_r, albedo_g, albedo_b, ambient, lit, specular, shininess):
    """Lambert + ambient + Blinn-Phong (Blinn 1977, half-vector) shading with a white directional light.

    ``colour = albedo * (ambient + (1 - ambient) * lit * max(n.l, 0))
    + specular * lit * [n.l > 0] * max(n.h, 0) ** shininess``, clipped to 1, with
    ``h = normalise(l + v)``. All vectors are unit: ``n`` the surface normal, ``v`` towards the
    camera, ``l`` towards the light; ``lit`` is 1 in light and 0 in shadow. Only the specular
    term depends on ``v``.

    Returns
    -------
    (r, g, b) : float
        Linear colour in [0, 1].
    """
    n_dot_l = nx * lx + ny * ly + nz * lz
    direct = lit * n_dot_l if n_dot_l > 0.0 else 0.0
    diffuse = ambient + (1.0 - ambient) * direct
    highlight = 0.0
    if specular > 0.0 and direct > 0.0:
        hx = lx + vx
        hy = ly + vy
        hz = lz + vz
        h_norm = math.sqrt(hx * hx + hy * hy + hz * hz)
        if h_norm > 0.0:
            n_dot_h = (nx * hx + ny * hy + nz * hz) / h_norm
            if n_dot_h > 0.0:
                highlight = specular * lit * n_dot_h**shininess
    return (
        min(albedo_r * diffuse + highlight, 1.0),
        min(albedo_g * diffuse + highlight, 1.0),
        min(albedo_b * diffuse + highlight, 1.0),
    )


@njit(cache=True)
def shade_ray(
    ox, oy, oz, dx, dy, dz, kinds, params, texture_kinds, texture_colours, texture_freqs, speculars, light, ambient
):
    """Trace one primary ray and shade it, with a hard shadow ray towards the light.

    Returns
    -------
    hit : bool
    r, g, b : float
        Shaded colour in [0, 1] (0 on a miss).
    """
    t, k = closest_hit(ox, oy, oz, dx, dy, dz, kinds, params, 0.0)
    if k < 0:
        return False, 0.0, 0.0, 0.0
    px = ox + t * dx
    py = oy + t * dy
    pz = oz + t * dz
    nx, ny, nz = surface_normal(px, py, pz, kinds[k], params[k])
    if nx * dx + ny * dy + nz * dz > 0.0:
        nx, ny, nz = -nx, -ny, -nz
    lx, ly, lz = light[0], light[1], light[2]
    lit = 0.0
    if nx * lx + ny * ly + nz * lz > 0.0:
        # Start the shadow ray slightly off the surface so it does not re-hit its own origin.
        sx = px + 1e-6 * nx
        sy = py + 1e-6 * ny
        sz = pz + 1e-6 * nz
        lit = 0.0 if _any_hit(sx, sy, sz, lx, ly, lz, kinds, params, 1e-6) else 1.0
    parity = texture_parity(
        (px - params[k, 0]) * texture_freqs[k, 0],
        (py - params[k, 1]) * texture_freqs[k, 1],
        (pz - params[k, 2]) * texture_freqs[k, 2],
        texture_kinds[k],
    )
    r, g, b = blinn_phong(
        nx, ny, nz, -dx, -dy, -dz, lx, ly, lz,
        texture_colours[k, parity, 0], texture_colours[k, parity, 1], texture_colours[k, parity, 2],
        ambient, lit, speculars[k, 0], speculars[k, 1],
    )
    return True, r, g, b


@njit(cache=True, parallel=True)
def render_view(
    c2w, focal, height, width, samples, kinds, params, texture_kinds, texture_colours, texture_freqs, speculars, light,
    ambient, out,
):
    """Render one camera with ``samples`` x ``samples`` rays per pixel into ``out``.

    Parameters
    ----------
    c2w : (4, 4) float64
        Camera-to-world, OpenGL convention (see :mod:`hero_lite.scenes.cameras`).
    focal : float
        Pixels.
    height, width : int
    samples : int
        Rays per pixel side; the scenes are made with 2 (2x2 supersampling).
    kinds : (n_prims,) int64
    params : (n_prims, 8) float64
    texture_kinds : (n_prims,) int64
    texture_colours : (n_prims, 2, 3) float64
    texture_freqs : (n_prims, 3) float64
    speculars : (n_prims, 2) float64
        Specular strength and Blinn-Phong exponent.
    light : (3,) float64
        Unit direction towards the light.
    ambient : float
    out : (height, width, 4) float64
        Written: straight-alpha RGBA. Sub-samples sit at pixel offsets (k + 0.5) / samples (0.25
        and 0.75 for 2; the pixel centre for 1); alpha is the fraction of sub-samples that hit,
        colour the mean over the hits (the premultiplied mean divided by alpha), 0 where nothing
        was hit.
    """
    for j in prange(height):
        for i in range(width):
            sum_r = 0.0
            sum_g = 0.0
            sum_b = 0.0
            n_hits = 0
            for sub_row in range(samples):
                for sub_col in range(samples):
                    cam_x = (i + (sub_col + 0.5) / samples - 0.5 * width) / focal
                    cam_y = -(j + (sub_row + 0.5) / samples - 0.5 * height) / focal
                    dx = c2w[0, 0] * cam_x + c2w[0, 1] * cam_y - c2w[0, 2]
                    dy = c2w[1, 0] * cam_x + c2w[1, 1] * cam_y - c2w[1, 2]
                    dz = c2w[2, 0] * cam_x + c2w[2, 1] * cam_y - c2w[2, 2]
                    norm = math.sqrt(dx * dx + dy * dy + dz * dz)
                    hit, r, g, b = shade_ray(
                        c2w[0, 3], c2w[1, 3], c2w[2, 3], dx / norm, dy / norm, dz / norm,
                        kinds, params, texture_kinds, texture_colours, texture_freqs, speculars, light, ambient,
                    )
                    if hit:
                        sum_r += r
                        sum_g += g
                        sum_b += b
                        n_hits += 1
            if n_hits > 0:
                out[j, i, 0] = sum_r / n_hits
                out[j, i, 1] = sum_g / n_hits
                out[j, i, 2] = sum_b / n_hits
            else:
                out[j, i, 0] = 0.0
                out[j, i, 1] = 0.0
                out[j, i, 2] = 0.0
            out[j, i, 3] = n_hits / (samples * samples)
