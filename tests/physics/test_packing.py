"""The one-operand callback layout: fields survive a round trip bit for bit, on both sides."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ksim.physics.packing import Layout

LAYOUT = Layout({"bits": ((4,), np.uint32), "x": ((2, 3), np.float32), "t": ((), np.float32), "flag": ((), np.bool_)})


def test_device_pack_then_host_read_and_host_write_then_device_unpack():
    rng = np.random.default_rng(0)
    values = {
        "bits": rng.integers(0, 2**32, (5, 4), dtype=np.uint32),
        "x": rng.normal(size=(5, 2, 3)).astype(np.float32),
        "t": np.array([0.0, -0.0, np.inf, np.nan, 1e-40], np.float32),  # signs, non-finite, subnormal
        "flag": np.array([True, False, True, False, False]),
    }
    assert LAYOUT.width == 4 + 6 + 1 + 1
    packed = np.asarray(jax.vmap(LAYOUT.pack)(**{k: jnp.asarray(v) for k, v in values.items()}))
    assert packed.shape == (5, LAYOUT.width) and packed.dtype == np.uint32
    for name, value in values.items():
        read = LAYOUT.read(packed, name)
        assert read.dtype == value.dtype and read.shape == value.shape
        np.testing.assert_array_equal(np.ascontiguousarray(read).view(np.uint8), value.view(np.uint8))  # bit-exact
    out = LAYOUT.empty(5)
    for name, value in values.items():
        LAYOUT.write(out, name, value)
    np.testing.assert_array_equal(out, packed)
    unpacked = jax.vmap(LAYOUT.unpack)(jnp.asarray(out))
    for name, value in values.items():
        np.testing.assert_array_equal(np.asarray(unpacked[name]).view(np.uint8), value.view(np.uint8))


def test_host_write_converts_float64_to_float32():
    out = LAYOUT.empty(2)
    LAYOUT.write(out, "t", np.array([0.1, 2.5]))  # float64, as MuJoCo's arrays are
    np.testing.assert_array_equal(LAYOUT.read(out, "t"), np.array([0.1, 2.5], np.float32))


def test_only_32_bit_fields_are_accepted():
    with pytest.raises(TypeError, match="float32, uint32 or bool.*'q': 'float64'"):
        Layout({"q": ((3,), np.float64)})
