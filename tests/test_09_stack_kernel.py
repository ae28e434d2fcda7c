"""The median kernel and the dB reading: hand-computed stacks and the real OPERA RTC series."""

from __future__ import annotations

import numpy as np
import pytest

from sarflow.stack import fuse, median_db_files, nanmedian_stack, to_db

NAN = np.nan


def test_hand_computed_medians_exact():
    # 5 dates x 1 x 6 pixels: odd count, even count, NaNs, one valid, all-NaN, ties
    stack = np.array([
        [3.0, 4.0, NAN, NAN, NAN, 2.0],
        [1.0, 1.0, 7.0, NAN, NAN, 2.0],
        [2.0, NAN, NAN, 5.0, NAN, 9.0],
        [5.0, 2.0, 1.0, NAN, NAN, -1.0],
        [4.0, 3.0, NAN, NAN, NAN, 2.0],
    ], dtype=np.float32)[:, None, :]
    med, count = nanmedian_stack(stack)
    assert med.shape == (1, 6) and med.dtype == np.float32 and count.dtype == np.int32
    # sorted: [1,2,3,4,5] -> 3 | [1,2,3,4] -> 2.5 | [1,7] -> 4 | [5] -> 5 | none | [-1,2,2,2,9] -> 2
    np.testing.assert_array_equal(med[0, :4], [3.0, 2.5, 4.0, 5.0])
    assert np.isnan(med[0, 4])
    assert med[0, 5] == 2.0
    np.testing.assert_array_equal(count[0], [5, 4, 2, 1, 0, 5])


def test_even_count_averages_middle_values_and_handles_negative_db():
    stack = np.array([[-12.5], [-10.0], [-11.0], [-20.25]], dtype=np.float32)[:, :, None]
    med, count = nanmedian_stack(stack)
    assert med[0, 0] == np.float32(-11.75) and count[0, 0] == 4


def test_empty_time_axis_and_single_date():
    med, count = nanmedian_stack(np.empty((0, 2, 3), np.float32))
    assert np.isnan(med).all() and (count == 0).all() and med.shape == (2, 3)
    one = np.array([[[1.5, NAN]]], np.float32)
    med, count = nanmedian_stack(one)
    assert med[0, 0] == 1.5 and np.isnan(med[0, 1])
    np.testing.assert_array_equal(count, [[1, 0]])


def test_random_stack_equals_numpy_nanmedian_exactly():
    rng = np.random.default_rng(3)
    x = rng.normal(-12, 3, size=(17, 40, 50)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = NAN
    x[:, 0, 0] = NAN
    med, count = nanmedian_stack(x)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(x, axis=0)
    np.testing.assert_array_equal(med, ref)  # NaN positions equal too
    np.testing.assert_array_equal(count, np.isfinite(x).sum(0))


def test_to_db_masks_non_positive():
    db = to_db(np.array([1.0, 0.1, 0.0, -1.0, NAN, 100.0], np.float32))
    np.testing.assert_allclose(db[[0, 1, 5]], [0.0, -10.0, 20.0], atol=1e-6)
    assert np.isnan(db[[2, 3, 4]]).all()


def test_fuse_falls_back_to_one_pass_and_flags_it():
    asc = np.array([1.0, 2.0, NAN, NAN], np.float32)
    desc = np.array([3.0, NAN, 4.0, NAN], np.float32)
    fused, quality = fuse(asc, desc)
    np.testing.assert_array_equal(fused[:3], [2.0, 2.0, 4.0])
    assert np.isnan(fused[3])
    np.testing.assert_array_equal(quality, [3, 1, 2, 0])


@pytest.mark.parametrize("pol", ["VV", "VH"])
def test_real_opera_rtc_series_matches_numpy(fixtures_dir, pol):
    files = sorted((fixtures_dir / "rtc_stack" / "T009_019294_IW2_cropped_tv").glob(f"*_{pol}_tv_cropped.tif"))
    assert len(files) == 10
    med, count = median_db_files(files)
    from osgeo import gdal

    raw = np.stack([gdal.Open(str(f)).ReadAsArray().astype(np.float64) for f in files])
    assert raw.shape == (10, 100, 150)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.nanmedian(10 * np.log10(np.where(raw > 0, raw, np.nan)), axis=0)
    assert np.isfinite(ref).mean() > 0.9  # the comparison is over real pixels
    np.testing.assert_array_equal(np.isnan(med), np.isnan(ref))
    assert np.nanmax(np.abs(med - ref)) < 1e-5
    np.testing.assert_array_equal(count, np.isfinite(raw).sum(0) - (raw <= 0).sum(0))
    # even count (10): the median is the mean of the 5th and 6th sorted dB values
    col = np.sort(10 * np.log10(raw[:, 50, 75]))
    assert abs(med[50, 75] - (col[4] + col[5]) / 2) < 1e-5
