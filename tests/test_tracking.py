import numpy as np

from mgcli.pose.tracking import Detection, Tracker, assemble, iou


def _person(x: float, y: float, size: float, v: int = 3) -> Detection:
    kp = np.array([[x, y], [x + size, y + size], [x, y + size]][:v], np.float32)
    return Detection(kp, np.ones(len(kp), np.float32))


def test_iou() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou(a, b), [[1.0, 50 / 150, 0.0]])


def test_people_keep_their_index_and_the_interviewee_comes_first() -> None:
    tr = Tracker()
    for t in range(20):
        # a small person at the edge walks right; the big central one sits still. Order of
        # detections changes every frame.
        small, big = _person(5 + t, 5, 20), _person(60, 30, 80)
        tr.update(t, [small, big] if t % 2 else [big, small])
    assert len(tr.tracks) == 2
    ranked = tr.ranked((200, 200))
    assert all(d.keypoint[0, 0] == 60 for d in ranked[0].detections)
    kp, sc = assemble(ranked, 25, 3, max_persons=2)
    assert kp.shape == (2, 25, 3, 2) and (kp[0, :20, 0, 0] == 60).all()
    np.testing.assert_allclose(kp[1, :20, 0, 0], 5 + np.arange(20))
    assert (sc[:, 20:] == 0).all()  # frames nobody was seen in
    kp1, _ = assemble(ranked, 25, 3, max_persons=1)
    assert kp1.shape == (1, 25, 3, 2)


def test_skipped_frames_do_not_break_a_track() -> None:
    tr = Tracker(max_gap=2)
    for t in list(range(5)) + list(range(500, 505)):  # two clips far apart in the video
        tr.update(t, [_person(10, 10, 50)])
    assert len(tr.tracks) == 1
    tr.update(506, [])
    tr.update(507, [])
    tr.update(508, [])
    tr.update(509, [_person(10, 10, 50)])  # three processed frames without her: a new track
    assert len(tr.tracks) == 2


def test_nobody_gives_one_empty_person() -> None:
    kp, sc = assemble([], 4, 17, max_persons=3)
    assert kp.shape == (1, 4, 17, 2) and not sc.any()
