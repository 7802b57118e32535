import numpy as np
import pytest

from mgcli.errors import MgError
from mgcli.pose.layouts import LAYOUTS, conversion, convert, get_layout


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_flips_are_involutions_and_limbs_valid(name: str) -> None:
    lay = LAYOUTS[name]
    fi, lf = lay.flip_index, lay.limb_flip_index
    assert sorted(fi.tolist()) == list(range(lay.num_joints))
    assert (fi[fi] == np.arange(lay.num_joints)).all()
    assert (lf[lf] == np.arange(len(lay.limbs))).all()
    assert all(0 <= a < lay.num_joints and 0 <= b < lay.num_joints and a != b for a, b in lay.limbs)
    assert len(lay.left) == len(lay.right)
    for i in lay.left:
        assert fi[i] in lay.right


def test_coco17_matches_poseconv3d() -> None:
    coco = get_layout("coco17")
    assert coco.left == (1, 3, 5, 7, 9, 11, 13, 15) and coco.right == (2, 4, 6, 8, 10, 12, 14, 16)
    lf = coco.limb_flip_index
    left_limbs, right_limbs = (0, 2, 4, 5, 6, 10, 11, 12), (1, 3, 7, 8, 9, 13, 14, 15)
    assert [int(lf[i]) for i in left_limbs] == list(right_limbs)
    assert lf[16] == 16  # hip to hip maps to itself


def test_sizes() -> None:
    assert {n: lay.num_joints for n, lay in LAYOUTS.items()} == {
        "openpose137": 137,
        "openpose35": 35,
        "body25": 25,
        "coco17": 17,
        "mediapipe33": 33,
        "mediapipe75": 75,
        "upper22": 22,
    }


def test_convert_openpose137_to_coco17_and_upper22() -> None:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (2, 5, 137, 2)).astype(np.float32)
    sc = rng.uniform(0.1, 1, (2, 5, 137)).astype(np.float32)
    sc[0, 0, 5] = 0  # left shoulder undetected in one frame
    coco_kp, coco_sc = convert(kp, sc, "openpose137", "coco17")
    body25_for_coco = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
    np.testing.assert_array_equal(coco_kp, kp[..., body25_for_coco, :])
    np.testing.assert_array_equal(coco_sc, sc[..., body25_for_coco])
    up_kp, up_sc = convert(kp, sc, "openpose137", "upper22")
    assert up_kp.shape == (2, 5, 22, 2)
    np.testing.assert_array_equal(up_kp[..., 1, :], kp[..., 1, :])  # shoulder centre = OpenPose neck
    np.testing.assert_array_equal(up_kp[..., 12, :], kp[..., 116 + 4, :])  # right thumb tip
    np.testing.assert_array_equal(up_kp[..., 21, :], kp[..., 95 + 20, :])  # left pinky tip


def test_derived_and_missing_joints() -> None:
    kp = np.zeros((1, 17, 2), np.float32)
    sc = np.ones((1, 17), np.float32)
    kp[0, 5], kp[0, 6] = (10, 20), (30, 40)  # shoulders
    sc[0, 5] = 0.4
    up_kp, up_sc = convert(kp, sc, "coco17", "upper22")
    np.testing.assert_allclose(up_kp[0, 1], (20, 30))  # neck from the two shoulders
    assert up_sc[0, 1] == pytest.approx(0.4)  # the weaker of its parts
    assert (up_sc[0, 12:] == 0).all()  # coco has no fingertips
    assert conversion("coco17", "upper22").missing[:1] == ["right_thumb4"]


def test_wrong_joint_count_and_unknown_layout() -> None:
    with pytest.raises(MgError, match="have 18 joints, layout coco17 has 17"):
        convert(np.zeros((18, 2)), np.zeros(18), "coco17", "body25")
    with pytest.raises(MgError, match="unknown keypoint layout 'coco18'"):
        get_layout("coco18")
