"""Noise removal (filters.noise) against the sample district's true noise: birds above, multipath echoes below."""

import laspy
import numpy as np
import pyproj
import pytest

from gis.asprs import GROUND, NOISE, UNCLASSIFIED
from gis.errors import InputError
from pipelines.spec import StageSpec
from pipelines.stages.base import PointTile
from pipelines.stages.filters import NoiseFilter

# What the tests guarantee on the sample district with the defaults (1 m voxels, 8 neighbours, 3 sigma), as the
# README says; measured: 0.898 of the 325 noise points found, no point of a real surface flagged. The per-point
# test (voxel: 0, 16 neighbours) finds 0.948 but flags about 1 % of the real points (edges of crowns, facades).
MIN_RECALL = 0.85
MAX_FALSE_PER_10K = 1.0


def _tile(xyz: np.ndarray, classification: np.ndarray) -> PointTile:
    ones = np.ones(len(xyz), dtype=np.uint8)
    return PointTile(xyz=xyz, classification=classification, return_number=ones, number_of_returns=ones,
                     crs=pyproj.CRS("EPSG:2154"),
                     core=(xyz[:, 0].min(), xyz[:, 1].min(), xyz[:, 0].max() + 1, xyz[:, 1].max() + 1))


def _noise_filter(**options) -> NoiseFilter:
    return NoiseFilter(StageSpec(type="filters.noise", tag="noise", options=options, inputs=("read",)))


def test_noise_filter_finds_the_districts_noise_without_flagging_surfaces(district):
    las = laspy.read(district / "district.laz")
    truth = np.asarray(las.classification) == NOISE
    classification = np.where(truth, UNCLASSIFIED, las.classification).astype(np.uint8)
    tile = _noise_filter().process(_tile(np.column_stack([las.x, las.y, las.z]), classification))
    flagged = tile.classification == NOISE
    recall = np.sum(flagged & truth) / truth.sum()
    false_per_10k = np.sum(flagged & ~truth) / len(truth) * 1e4
    print(f"noise: recall {recall:.3f} of {truth.sum()}, false positives {false_per_10k:.2f} per 10,000 points")
    assert recall >= MIN_RECALL
    assert false_per_10k <= MAX_FALSE_PER_10K


@pytest.mark.parametrize("voxel", [0.0, 1.0])
def test_an_isolated_point_is_noise_and_keeps_its_other_classes(voxel):
    rng = np.random.default_rng(3)
    ground = np.column_stack([rng.uniform(0, 50, 20_000), rng.uniform(0, 50, 20_000), rng.normal(35, 0.03, 20_000)])
    xyz = np.vstack([ground, [[25.0, 25.0, 80.0]]]) + [650_000.0, 6_860_000.0, 0.0]
    classification = np.full(len(xyz), GROUND, dtype=np.uint8)
    tile = _noise_filter(voxel=voxel).process(_tile(xyz, classification))
    assert tile.classification[-1] == NOISE
    assert np.all(tile.classification[:-1] == GROUND)


def test_the_voxel_option_cannot_be_negative():
    with pytest.raises(InputError, match=r"stage 'noise' \(filters.noise\): option 'voxel' must be >= 0"):
        _noise_filter(voxel=-1.0)
