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


def test_zoom_by_keeps_the_anchor_on_screen() -> None:
    s = ViewState().zoom_by(2.0, fitted_zoom=0.5)
    assert s.zoom == 1.0 and s.pan == (0.0, 0.0)  # from the fitted view's zoom, about the centre
    t = s.zoom_by(4.0, anchor=(10.0, -6.0))
    assert t.zoom == 4.0
    # the anchor's offset from the view centre shrinks by the zoom ratio: it stays on screen
    assert (10.0 - t.pan[0]) * t.zoom == pytest.approx((10.0 - s.pan[0]) * s.zoom)
    assert (-6.0 - t.pan[1]) * t.zoom == pytest.approx((-6.0 - s.pan[1]) * s.zoom)
    clamped = t.zoom_by(1000.0, anchor=(10.0, -6.0))
    assert clamped.zoom == 64.0
    assert (10.0 - clamped.pan[0]) * 64.0 == pytest.approx((10.0 - t.pan[0]) * 4.0)
    assert ViewState().zoom_by(2.0).zoom == 2.0  # no fitted zoom known: from 1:1


def test_pan_fit_and_one_to_one() -> None:
    fitted = ViewState(window=(40.0, 80.0))
    p = fitted.pan_by(5, -3, fitted_zoom=0.75)
    assert p.zoom == 0.75 and p.pan == (5.0, -3.0)  # panning leaves the fit at its zoom
    assert p.pan_by(1, 1).pan == (6.0, -2.0) and p.pan_by(1, 1).zoom == 0.75
    assert p.pan_by(0, 0, fitted_zoom=3.0).zoom == 0.75  # a zoomed state keeps its zoom
    o = p.one_to_one()
    assert o.zoom == 1.0 and o.pan == p.pan
    f = o.fit()
    assert f.zoom == 0.0 and f.pan == (0.0, 0.0) and f.window == (40.0, 80.0)
    assert f == fitted
    assert ViewState.from_dict(o.to_dict()) == o
