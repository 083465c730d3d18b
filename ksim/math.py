"""Small rigid-body helpers on quaternions in MuJoCo's (w, x, y, z) order."""

import jax.numpy as jnp
from jaxtyping import Array, Float


def quat_conj(quat: Float[Array, "4"]) -> Float[Array, "4"]:
    """Conjugate (the inverse, for a unit quaternion)."""
    return quat * jnp.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(quat: Float[Array, "4"], vec: Float[Array, "3"]) -> Float[Array, "3"]:
    """Rotate `vec` by the unit quaternion `quat` (body frame to world frame)."""
    w, xyz = quat[0], quat[1:]
    t = 2.0 * jnp.cross(xyz, vec)
    return vec + w * t + jnp.cross(xyz, t)


def quat_rotate_inverse(quat: Float[Array, "4"], vec: Float[Array, "3"]) -> Float[Array, "3"]:
    """Rotate `vec` by the inverse of `quat` (world frame to body frame)."""
    return quat_rotate(quat_conj(quat), vec)


def projected_gravity(quat: Float[Array, "4"]) -> Float[Array, "3"]:
    """The unit gravity direction seen in the body frame; (0, 0, -1) when upright."""
    return quat_rotate_inverse(quat, jnp.array([0.0, 0.0, -1.0]))


def quat_from_yaw(yaw: Float[Array, ""]) -> Float[Array, "4"]:
    """The quaternion of a rotation by `yaw` radians about the world z axis."""
    return jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])


def quat_mul(a: Float[Array, "4"], b: Float[Array, "4"]) -> Float[Array, "4"]:
    """Hamilton product `a * b` (apply `b`, then `a`)."""
    aw, ax, ay, az = a[0], a[1], a[2], a[3]
    bw, bx, by, bz = b[0], b[1], b[2], b[3]
    return jnp.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )
