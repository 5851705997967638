"""How often a reply's text is sent to the browser, as more replies stream at once."""

from chat.generation import FRAME_SECONDS, MAX_FRAME_SECONDS, frame_seconds


def test_few_replies_get_twenty_frames_a_second():
    assert frame_seconds(1) == FRAME_SECONDS == 0.05
    assert frame_seconds(25) == FRAME_SECONDS


def test_frames_grow_with_load_but_stay_bounded():
    assert FRAME_SECONDS < frame_seconds(100) < frame_seconds(200) < MAX_FRAME_SECONDS
    assert frame_seconds(10_000) == MAX_FRAME_SECONDS
