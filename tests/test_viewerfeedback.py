from streamer.viewerfeedback import QUIET, keyframe_needed


def test_request_while_frames_flow_is_answered():
    assert keyframe_needed(now=10.0, last_sent_at=9.9, last_sent_seq=500, reported_highest_seq=500)


def test_request_on_a_still_screen_from_a_viewer_holding_everything_is_not():
    # Chrome's "no decodable frame in 3 s" request, after it reported our last packet.
    assert not keyframe_needed(now=13.0, last_sent_at=10.0, last_sent_seq=500, reported_highest_seq=500)


def test_request_from_a_viewer_that_missed_the_tail_is_answered():
    assert keyframe_needed(now=13.0, last_sent_at=10.0, last_sent_seq=500, reported_highest_seq=497)


def test_sequence_numbers_wrap():
    assert not keyframe_needed(now=13.0, last_sent_at=10.0, last_sent_seq=3, reported_highest_seq=3)
    assert keyframe_needed(now=13.0, last_sent_at=10.0, last_sent_seq=3, reported_highest_seq=65534)


def test_without_a_report_or_before_any_packet_the_request_is_answered():
    assert keyframe_needed(now=13.0, last_sent_at=10.0, last_sent_seq=500, reported_highest_seq=None)
    assert keyframe_needed(now=13.0, last_sent_at=None, last_sent_seq=None, reported_highest_seq=None)
    assert keyframe_needed(now=10.0 + QUIET - 0.01, last_sent_at=10.0, last_sent_seq=5, reported_highest_seq=5)
