import jax.numpy as jnp
import numpy as np

from ksim.math import projected_gravity, quat_from_yaw, quat_mul, quat_rotate, quat_rotate_inverse


def test_rotate_about_z_by_90_degrees():
    quat = quat_from_yaw(jnp.pi / 2)
    np.testing.assert_allclose(quat_rotate(quat, jnp.array([1.0, 0.0, 0.0])), [0.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(quat_rotate_inverse(quat, jnp.array([0.0, 1.0, 0.0])), [1.0, 0.0, 0.0], atol=1e-6)


def test_projected_gravity_upright_and_pitched():
    np.testing.assert_allclose(projected_gravity(jnp.array([1.0, 0, 0, 0])), [0, 0, -1], atol=1e-7)
    # pitched 90° nose-down about +y: gravity points along the body's +x
    s = np.sqrt(0.5)
    np.testing.assert_allclose(projected_gravity(jnp.array([s, 0, s, 0])), [1, 0, 0], atol=1e-6)


def test_quat_mul_composes_yaws():
    np.testing.assert_allclose(quat_mul(quat_from_yaw(0.3), quat_from_yaw(0.4)), quat_from_yaw(0.7), atol=1e-6)
