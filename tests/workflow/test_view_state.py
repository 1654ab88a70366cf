"""The pure view state of a viewport: transitions and their rules, without a window."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.core.errors import UsageError
from app.workflow.view_state import IDENTITY, TOOLS, ViewState


def test_scrolling_clamps_to_the_series() -> None:
    s = ViewState(index=3)
    assert s.scrolled(+10, count=5).index == 4
    assert s.scrolled(-10, count=5).index == 0
    assert s.scrolled(+1, count=0).index == 0
    assert s.index == 3  # frozen: transitions return new states


def test_orientation_algebra() -> None:
    s = ViewState()
    assert s.rotated(90).rotated(270).orientation == IDENTITY
    assert s.rotated(360).orientation == IDENTITY
    assert s.rotated(90).orientation == ((0, -1), (1, 0))
    assert s.flipped(True).flipped(True).orientation == IDENTITY
    # a horizontal flip then a half turn is a vertical flip
    assert s.flipped(True).rotated(180).orientation == s.flipped(False).orientation
    assert s.rotated(90).flipped(True).orientation != s.flipped(True).rotated(90).orientation


def test_window_zoom_pan_and_reset() -> None:
    s = ViewState(invert=True, tool="length").windowed(40, 80).zoomed(4).panned(3, -2).rotated(90)
    assert s.window == (40.0, 80.0) and s.zoom == 4.0 and s.pan == (3.0, -2.0)
    assert s.zoomed(1000).zoom == 64.0 and s.zoomed(1e-9).zoom == 0.02
    r = s.reset(invert=False)
    assert (r.index, r.tool, r.window, r.zoom, r.orientation, r.invert) == (
        s.index,
        "length",
        None,
        0.0,
        IDENTITY,
        False,
    )


@pytest.mark.parametrize(
    "bad",
    [
        dict(tool="laser"),
        dict(index=-1),
        dict(window=(0.0, 0.0)),
        dict(overlay_opacity=1.5),
        dict(zoom=100.0),
        dict(orientation=((2, 0), (0, 1))),
    ],
)
def test_rules_are_enforced_in_the_constructor(bad: dict) -> None:
    with pytest.raises(UsageError):
        ViewState(**bad)


def test_round_trip_through_a_dict() -> None:
    s = (
        ViewState(
            index=7,
            window=(-600.0, 1500.0),
            invert=True,
            zoom=2.0,
            pan=(1.5, 2.5),
            overlay_visible=False,
            overlay_opacity=0.3,
            tool=TOOLS[-1],
        )
        .rotated(90)
        .flipped(False)
    )
    assert ViewState.from_dict(s.to_dict()) == s
    with pytest.raises(UsageError):
        ViewState.from_dict({"window": "wide"})


def test_at_moves_to_an_image_and_keeps_the_rest() -> None:
    s = ViewState(window=(40.0, 80.0), tool="length").rotated(90)
    t = s.at(7)
    assert t.index == 7 and s.index == 0  # a new state; the old one is unchanged
    assert t == replace(s, index=7)
    with pytest.raises(UsageError):
        s.at(-1)
