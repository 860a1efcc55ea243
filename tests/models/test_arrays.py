"""The model array file: a plain .npz, written atomically, mappable with aligned data."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from movierec.models.arrays import ALIGNMENT, load_arrays, save_arrays


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "factors": rng.standard_normal((37, 5)).astype(np.float32),
        "odd.name": np.arange(7, dtype=np.int8),  # 7 bytes: the next entry starts unaligned
        "ids": np.arange(11, dtype=np.int64),
        "fortran": np.asfortranarray(rng.standard_normal((4, 3))),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.float64(2.5),
    }


def test_round_trip_read_and_mapped(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    save_arrays(path, _arrays())
    for mapped in (False, True):
        loaded = load_arrays(path, mmap_mode=mapped)
        assert loaded.keys() == _arrays().keys()
        for name, expected in _arrays().items():
            np.testing.assert_array_equal(loaded[name], expected)
            assert loaded[name].dtype == np.asarray(expected).dtype


def test_numpy_reads_the_file_as_a_plain_npz(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    save_arrays(path, _arrays())
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["factors"], _arrays()["factors"])


def test_mapped_arrays_are_aligned_read_only_views_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    save_arrays(path, _arrays())
    loaded = load_arrays(path, mmap_mode=True)
    for name in ("factors", "ids", "fortran"):
        array = loaded[name]
        assert not array.flags.writeable
        assert isinstance(_owner(array), mmap.mmap), name
        assert array.ctypes.data % ALIGNMENT == 0, name
    with pytest.raises(ValueError, match="read-only"):
        loaded["factors"][0, 0] = 1.0


def _owner(array: np.ndarray) -> object:
    """The object that owns an array's memory, at the end of its chain of views."""
    owner: object = array
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return owner.obj if isinstance(owner, memoryview) else owner


def test_a_save_never_disturbs_a_mapped_file_or_leaves_scratch(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    save_arrays(path, {"values": np.arange(1000, dtype=np.float64)})
    mapped = load_arrays(path, mmap_mode=True)["values"]
    save_arrays(path, {"values": np.zeros(10)})  # a retraining saves over the served file
    np.testing.assert_array_equal(mapped, np.arange(1000))  # the old pages are still there
    np.testing.assert_array_equal(load_arrays(path)["values"], np.zeros(10))
    with pytest.raises(ValueError, match="without pickle"):
        save_arrays(path, {"fine": np.ones(3), "objects": np.array([{}, []], dtype=object)})
    np.testing.assert_array_equal(load_arrays(path)["values"], np.zeros(10))
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


def test_the_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    save_arrays(tmp_path / "arrays.npz", {"values": np.ones(3)})
    assert (tmp_path / "arrays.npz").stat().st_mode == plain.stat().st_mode


def test_files_numpy_wrote_still_load_mapped(tmp_path: Path) -> None:
    """Models saved before this format (np.savez: unaligned) and compressed files load too."""
    for saver in (np.savez, np.savez_compressed):
        path = tmp_path / f"{saver.__name__}.npz"
        saver(path, a=np.arange(5, dtype=np.int8), b=np.arange(9, dtype=np.float64))
        loaded = load_arrays(path, mmap_mode=True)
        np.testing.assert_array_equal(loaded["b"], np.arange(9))
        assert loaded["b"].ctypes.data % loaded["b"].dtype.alignment == 0


def test_object_arrays_in_a_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, bad=np.array([{}, []], dtype=object))
    for mapped in (False, True):
        with pytest.raises(ValueError, match=r"pickle|objects"):
            load_arrays(path, mmap_mode=mapped)
