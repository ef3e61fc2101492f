from streamer.capture import CapturePolicy, CaptureSettings


def test_first_capture_is_immediate():
    assert CapturePolicy().next_capture(100.0) == 100.0


def test_fast_while_changing_then_lingers_then_slow():
    policy = CapturePolicy(CaptureSettings(max_fps=10, linger=2.0, idle_interval=0.5))
    policy.captured(0.0, changed=True)
    assert policy.next_capture(0.0) == 0.1
    # No change for a while: still fast inside the linger window...
    policy.captured(1.9, changed=False)
    assert abs(policy.next_capture(1.9) - 2.0) < 1e-9
    # ...and slow after it.
    policy.captured(2.1, changed=False)
    assert abs(policy.next_capture(2.1) - 2.6) < 1e-9


def test_frame_rate_cap_holds_even_when_idle_interval_is_shorter():
    policy = CapturePolicy(CaptureSettings(max_fps=4, idle_interval=0.1))
    policy.captured(0.0, changed=False)
    assert policy.next_capture(0.0) == 0.25


def test_keyframes_are_spaced():
    policy = CapturePolicy(CaptureSettings(min_keyframe_interval=0.25))
    assert policy.keyframe_allowed_at(5.0) == 5.0
    policy.sent(5.0, keyframe=True)
    assert policy.keyframe_allowed_at(5.1) == 5.25
    assert policy.keyframe_allowed_at(6.0) == 6.0


def test_refresh_after_a_long_silence_only():
    policy = CapturePolicy(CaptureSettings(refresh_interval=30))
    assert not policy.refresh_due(1000.0)  # nothing sent yet: the join keyframe comes first
    policy.sent(0.0, keyframe=False)
    assert not policy.refresh_due(29.9)
    assert policy.refresh_due(30.0)
    assert not CapturePolicy(CaptureSettings(refresh_interval=0)).refresh_due(1e9)
