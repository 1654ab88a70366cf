"""The viewport on real CT data: scrolling, window/level, measurements, presets, overlay."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from _gui_helpers import click, drag, wait_frame, wheel
from app.dicom.windowing import window_to_uint8
from app.gui.presets import CT_PRESETS
from app.gui.series import SeriesData
from app.gui.settings import Settings
from app.gui.viewport import Viewport


@pytest.fixture
def viewport(qtbot: Any, ct_head_series: SeriesData) -> Viewport:
    vp = Viewport(Settings())
    qtbot.addWidget(vp)
    vp.resize(700, 600)
    vp.show()
    qtbot.waitExposed(vp)
    vp.set_series(ct_head_series)
    wait_frame(qtbot, vp, 0)
    vp.fit()
    return vp


def test_first_frame_is_ct_in_hu_with_header_window(viewport: Viewport) -> None:
    s = viewport.series
    assert s is not None and s.count == 28 and s.modality == "CT" and s.units == "HU"
    assert viewport.frame is not None and viewport.frame.shape == (512, 512)
    assert viewport.frame.dtype == np.float32
    # air outside the head is around -1000 HU
    assert np.median(viewport.frame[:20, :20]) < -900
    assert (viewport.window_center, viewport.window_width) == (s.windows[0][0], s.windows[0][1])
    assert "Gantry tilt" in " ".join(s.warnings)


def test_wheel_scrolls_one_slice_per_notch(qtbot: Any, viewport: Viewport) -> None:
    center = QPointF(viewport.view.viewport().width() / 2, viewport.view.viewport().height() / 2)
    wheel(viewport, center, -1)  # towards the user: next slice
    assert viewport.index == 1
    wait_frame(qtbot, viewport, 1)
    wheel(viewport, center, -3)
    assert viewport.index == 4
    wheel(viewport, center, 2)
    assert viewport.index == 2
    wait_frame(qtbot, viewport, 2)
    first = viewport.series.cache.get(0)
    assert not np.array_equal(viewport.frame, first)


def test_keys_and_slider_scroll(qtbot: Any, viewport: Viewport) -> None:
    qtbot.keyClick(viewport, Qt.Key.Key_Down)
    assert viewport.index == 1
    qtbot.keyClick(viewport, Qt.Key.Key_End)
    assert viewport.index == 27
    qtbot.keyClick(viewport, Qt.Key.Key_PageUp)
    assert viewport.index == 27 - max(1, 28 // 10)
    viewport.slider.setValue(5)
    assert viewport.index == 5


def test_right_drag_changes_window_by_the_documented_amount(viewport: Viewport) -> None:
    c0, w0, step = viewport.window_center, viewport.window_width, viewport.wl_step
    assert step > 0
    start = QPointF(300, 300)
    drag(viewport, start, QPointF(380, 340), button=Qt.MouseButton.RightButton)
    # right: wider by 80 * step; down: centre higher by 40 * step
    assert viewport.window_width == pytest.approx(w0 + 80 * step, rel=1e-6)
    assert viewport.window_center == pytest.approx(c0 + 40 * step, rel=1e-6)
    # what is painted is the frame windowed with exactly these values
    lo = viewport.window_center - viewport.window_width / 2
    expected = np.clip(np.round((viewport.frame - lo) * 255.0 / viewport.window_width), 0, 255)
    assert np.abs(viewport.display.astype(int) - expected).max() <= 1
    assert np.array_equal(viewport.image.image, viewport.display) and viewport.image.levels is None


def test_length_across_known_pixels_reports_mm(qtbot: Any, viewport: Viewport) -> None:
    spacing = viewport.series.pixel_spacing
    assert spacing is not None and spacing[1] == pytest.approx(0.4882812, rel=1e-6)
    viewport.set_tool("length")
    viewport.set_zoom(1.0)
    a, b = viewport.image_to_widget(156.0, 256.0), viewport.image_to_widget(356.0, 256.0)
    drag(viewport, a, b)
    assert len(viewport.measurements) == 1
    m = viewport.measurements[0]
    (x0, y0), (x1, y1) = m.points()
    assert x0 == pytest.approx(156, abs=1.0) and x1 == pytest.approx(356, abs=1.0)
    assert m.values["unit"] == "mm"
    expected = math.hypot((x1 - x0) * spacing[1], (y1 - y0) * spacing[0])
    assert m.values["length"] == pytest.approx(expected, rel=1e-9)
    assert m.values["length"] == pytest.approx(200 * 0.4882812, abs=0.6)  # 97.66 mm
    assert "97." in m.label.toPlainText() and "mm" in m.label.toPlainText()
    # select and delete
    viewport.set_tool("pointer")
    click(viewport, viewport.image_to_widget(256.0, 256.0))
    assert viewport.selected is m
    assert viewport.delete_selected() and not viewport.measurements


def test_ellipse_and_rect_statistics_match_numpy(viewport: Viewport) -> None:
    frame = viewport.frame
    r = viewport.add_measurement("rect", [(100.0, 120.0), (140.0, 150.0)])
    inside = frame[120:150, 100:140]
    assert r.values["mean"] == pytest.approx(float(inside.mean()), rel=1e-5)
    assert r.values["sd"] == pytest.approx(float(inside.std()), rel=1e-4)
    assert r.values["min"] == float(inside.min()) and r.values["max"] == float(inside.max())
    sy, sx = viewport.series.pixel_spacing
    assert r.values["area"] == pytest.approx(40 * 30 * sx * sy)
    e = viewport.add_measurement("ellipse", [(200.0, 200.0), (260.0, 240.0)])
    assert e.values["area"] == pytest.approx(math.pi * 30 * 20 * sx * sy)
    yy, xx = np.mgrid[0:512, 0:512]
    mask = ((xx + 0.5 - 230) / 30) ** 2 + ((yy + 0.5 - 220) / 20) ** 2 <= 1
    assert e.values["n"] == int(mask.sum())
    assert e.values["mean"] == pytest.approx(float(frame[mask].mean()), rel=1e-5)


def test_angle_measurement(viewport: Viewport) -> None:
    m = viewport.add_measurement("angle", [(300.0, 100.0), (100.0, 100.0), (100.0, 300.0)])
    assert m.values["angle"] == pytest.approx(90.0)


def test_ct_presets_on_number_keys(viewport: Viewport) -> None:
    documented = {
        1: ("Brain", 40, 80),
        2: ("Subdural", 75, 215),
        3: ("Stroke", 32, 8),
        4: ("Lung", -600, 1500),
        5: ("Mediastinum", 50, 350),
        6: ("Abdomen", 40, 400),
        7: ("Liver", 60, 160),
        8: ("Bone", 400, 1800),
    }
    assert [(p.name, p.center, p.width) for p in CT_PRESETS] == list(documented.values())
    for key, (name, c, w) in documented.items():
        viewport.apply_preset(key)
        assert (viewport.window_center, viewport.window_width, viewport.preset_name) == (c, w, name)
    viewport.apply_preset(0)
    assert (viewport.window_center, viewport.window_width) == viewport.series.windows[0][:2]


def test_zoom_pan_fit_rotate_flip_invert_reset(viewport: Viewport) -> None:
    viewport.set_zoom(2.0)
    assert viewport.zoom == pytest.approx(2.0, rel=1e-3)
    viewport.actual_size()
    assert viewport.zoom == pytest.approx(1.0, rel=1e-3)
    before = viewport.vb.viewRect().center()
    viewport.pan_by(50, 0)
    assert viewport.vb.viewRect().center().x() == pytest.approx(before.x() - 50, abs=0.5)
    assert viewport.orientation_text()["right"].startswith("L")
    viewport.rotate(90)
    letters = viewport.orientation_text()
    assert letters["bottom"].startswith("L") and letters["top"].startswith("R")
    viewport.flip_horizontal()
    plain = viewport.display.copy()
    viewport.toggle_invert()
    assert viewport.invert
    assert np.abs(viewport.display.astype(int) - (255 - plain.astype(int))).max() <= 1
    viewport.reset()
    assert not viewport.invert and viewport.orientation_text()["right"].startswith("L")
    assert (viewport.window_center, viewport.window_width) == viewport.series.windows[0][:2]


def test_overlay_follows_slices_and_checks_its_shape(qtbot: Any, viewport: Viewport) -> None:
    rgba = np.zeros((512, 512, 4), np.uint8)
    rgba[100:200, 100:200] = (255, 0, 0, 255)
    viewport.set_overlay(rgba)
    assert viewport.overlay_item.isVisible()
    # the overlay sits in the image's pixel grid: same transform as the image
    assert viewport.overlay_item.parentItem() is viewport.image.parentItem()
    viewport.step(1)
    assert not viewport.overlay_item.isVisible()  # set for another frame
    viewport.step(-1)
    assert viewport.overlay_item.isVisible()
    with pytest.raises(ValueError):
        viewport.set_overlay(np.zeros((10, 10, 4), np.uint8))
    layers = np.zeros((28, 512, 512, 4), np.uint8)
    viewport.set_overlay(layers)
    viewport.step(5)
    assert viewport.overlay_item.isVisible()
    viewport.set_overlay(None)
    assert not viewport.overlay_item.isVisible()


def test_uncalibrated_length_is_marked_in_pixels(qtbot: Any) -> None:
    data = SeriesData.from_array(
        np.arange(100 * 100, dtype=np.float32).reshape(100, 100), modality="OT"
    )
    vp = Viewport(Settings())
    qtbot.addWidget(vp)
    vp.resize(400, 400)
    vp.show()
    vp.set_series(data)
    m = vp.add_measurement("length", [(10.0, 10.0), (40.0, 50.0)])
    assert m.values == {"length": 50.0, "unit": "px"}
    assert "px" in m.label.toPlainText() and "no calibration" in m.label.toPlainText()
    assert any("No pixel spacing" in line for line in vp.annotation_text()["br"])


def test_cine_advances(qtbot: Any, viewport: Viewport) -> None:
    viewport.start_cine(30)
    qtbot.waitUntil(lambda: viewport.index >= 3, timeout=15000)
    viewport.stop_cine()
    assert not viewport.cine.isActive()


def test_corner_annotations(viewport: Viewport) -> None:
    text = viewport.annotation_text()
    assert text["bl"][0] == "Im 1 / 28"
    assert any(line.startswith("W 100") for line in text["bl"])
    assert any("Thk" in line for line in text["bl"])
    assert any(line.startswith("Zoom") for line in text["br"])
    viewport.settings.hide_patient_identity = True
    hidden = viewport.annotation_text()["tl"]
    name = viewport.series.meta.get("patient_name", "")
    assert not name or all(name.split("^")[0] not in line for line in hidden)


def test_frames_are_decoded_off_the_gui_thread(qtbot: Any, ct_head_series: SeriesData) -> None:
    import dataclasses
    import threading

    from app.gui.series import frame_cache

    threads: list[threading.Thread] = []
    real = ct_head_series.decode

    def decode(i: int) -> np.ndarray:
        threads.append(threading.current_thread())
        return real(i)

    fresh = dataclasses.replace(ct_head_series, cache=frame_cache(64 << 20), key="")
    fresh.decode = decode
    vp = Viewport(Settings())
    qtbot.addWidget(vp)
    vp.resize(500, 500)
    vp.show()
    vp.set_series(fresh, 10)
    assert vp.frame is None  # not decoded on this thread: it is loading
    assert "Loading" in vp._message
    wait_frame(qtbot, vp, 10)
    assert threads and all(t is not threading.main_thread() for t in threads)
    # decoding goes on around the current slice, nearest first
    qtbot.waitUntil(
        lambda: fresh.cache.get(11) is not None and fresh.cache.get(9) is not None, timeout=30000
    )
    assert np.array_equal(
        fresh.cache.get(10),
        ct_head_series.cache.get(10) if ct_head_series.cache.get(10) is not None else real(10),
    )


def test_view_state_snapshot_and_restore(viewport: Viewport) -> None:
    from app.workflow.view_state import ViewState

    viewport.set_index(12)
    viewport.set_window(40, 80)
    viewport.rotate(90)
    viewport.flip_horizontal()
    viewport.set_tool("length")
    state = viewport.view_state()
    assert state.index == 12 and state.window == (40.0, 80.0) and state.tool == "length"
    assert state.orientation == ViewState().rotated(90).flipped(True).orientation
    viewport.reset()
    viewport.set_index(0)
    viewport.set_tool("pointer")
    assert viewport.view_state().orientation == ViewState().orientation
    viewport.apply_view_state(state)
    again = viewport.view_state()
    assert (again.index, again.window, again.orientation, again.tool) == (
        12,
        (40.0, 80.0),
        state.orientation,
        "length",
    )


def test_user_actions_are_pure_view_state_transitions(qtbot: Any, viewport: Viewport) -> None:
    """The viewport keeps its view in one ViewState, changed by the pure transitions only."""
    from app.dicom.windowing import window_to_uint8

    before = viewport.state
    viewport.set_index(before.index + 5)
    assert viewport.state == before.scrolled(5, viewport.count)
    wait_frame(qtbot, viewport, before.index + 5)
    prev = viewport.state
    viewport.set_window(40, 80)
    assert viewport.state == prev.windowed(40, 80)
    prev = viewport.state
    viewport.toggle_invert()
    assert viewport.state.invert is not prev.invert
    prev = viewport.state
    viewport.rotate(90)
    viewport.flip_vertical()
    assert viewport.state == prev.rotated(90).flipped(horizontal=False)
    prev = viewport.state
    viewport.set_tool("pan")
    viewport.set_overlay_opacity(0.25)
    viewport.set_overlay_visible(False)
    assert viewport.state.tool == "pan" and viewport.state.overlay_opacity == 0.25
    assert not viewport.state.overlay_visible and viewport.overlay_item.opacity() == 0.25
    # what is painted is the state's window applied to the state's frame
    st = viewport.state
    assert viewport.frame is not None and viewport.display is not None
    np.testing.assert_array_equal(
        viewport.display, window_to_uint8(viewport.frame, *st.window, st.invert)
    )
    assert viewport.frame is viewport.series.cache.get(st.index)
    # a state from elsewhere (another viewport, a saved layout) is rendered as it is
    other = st.scrolled(-3, viewport.count).windowed(400, 2000).reset(invert=False)
    viewport.apply_view_state(other)
    wait_frame(qtbot, viewport, other.index)
    assert viewport.state.index == other.index and not viewport.state.invert


def test_replayed_annotations_paint_the_same_pixels_and_follow_changes(
    qtbot: Any, viewport: Viewport
) -> None:
    def grab() -> np.ndarray:
        viewport.view.viewport().repaint()
        img = viewport.view.viewport().grab().toImage()
        ptr = img.constBits()
        return np.frombuffer(ptr, np.uint8, img.sizeInBytes()).reshape(img.height(), -1).copy()

    first = grab()  # painted and recorded
    assert len(viewport._annotation_ops) >= 1
    viewport.set_index(1)
    wait_frame(qtbot, viewport, 1)
    second = grab()
    assert not np.array_equal(first, second)  # another slice: other pixels, other "Im" line
    viewport.set_index(0)
    wait_frame(qtbot, viewport, 0)
    assert np.array_equal(grab(), first)  # replayed blits: the very same pixels
    viewport._annotation_ops.clear()
    assert np.array_equal(grab(), first)  # and the same as painting afresh
    viewport.set_window(viewport.window_center + 10, viewport.window_width)
    changed = viewport.annotation_text()["bl"]
    assert not np.array_equal(grab(), first) and any(
        line.startswith("W 100  L") for line in changed
    )
    viewport.set_show_annotations(False)
    bare = grab()
    viewport.set_show_annotations(True)
    assert not np.array_equal(grab(), bare)  # texts come back: not a stale replay


def test_zoom_and_pan_live_in_the_view_state(qtbot: Any, viewport: Viewport) -> None:
    """Wheel zoom, drag pan, 1:1 and fit are ViewState transitions the view box then shows."""
    assert viewport.state.zoom == 0.0 and viewport.state.pan == (0.0, 0.0)  # fitted
    fitted = viewport.zoom
    # ctrl+wheel zooms about the cursor: the image point under it stays under it
    at = viewport.image_to_widget(300.0, 200.0)
    wheel(viewport, at, 2, Qt.KeyboardModifier.ControlModifier)
    s = viewport.state
    assert s.zoom > fitted and viewport.zoom == pytest.approx(s.zoom, rel=1e-3)
    after = viewport.image_to_widget(300.0, 200.0)
    assert (after.x(), after.y()) == (
        pytest.approx(at.x(), abs=1.0),
        pytest.approx(at.y(), abs=1.0),
    )
    # middle-drag pans: the state's centre moves by the drag in image pixels
    drag(viewport, QPointF(350, 300), QPointF(310, 300), Qt.MouseButton.MiddleButton)
    assert viewport.state.zoom == s.zoom
    assert viewport.state.pan[0] - s.pan[0] == pytest.approx(40 / s.zoom, rel=0.05)
    centre = viewport.vb.viewRect().center()
    assert viewport._to_image_offset(centre) == (
        pytest.approx(viewport.state.pan[0], abs=0.01),
        pytest.approx(viewport.state.pan[1], abs=0.01),
    )
    # a saved zoomed-and-panned view comes back after a reset
    saved = viewport.view_state().one_to_one().rotated(90)
    viewport.apply_view_state(saved)
    assert viewport.zoom == pytest.approx(1.0, rel=1e-3)
    viewport.reset()
    assert viewport.state.zoom == 0.0 and viewport.zoom == pytest.approx(fitted, rel=1e-3)
    viewport.apply_view_state(saved)
    assert viewport.view_state().zoom == 1.0 and viewport.view_state().pan == saved.pan
    assert viewport.zoom == pytest.approx(1.0, rel=1e-3)
    centre = viewport._to_image_offset(viewport.vb.viewRect().center())
    assert centre == (pytest.approx(saved.pan[0], abs=0.01), pytest.approx(saved.pan[1], abs=0.01))
    viewport.fit()
    assert viewport.state.zoom == 0.0 and viewport.state.pan == (0.0, 0.0)
    assert viewport.zoom == pytest.approx(fitted, rel=1e-3)


def test_neighbours_are_windowed_ahead_of_the_scroll_as_painted(
    qtbot: Any, viewport: Viewport
) -> None:
    """The decoded slices around the one on screen are windowed on a worker, with the window
    on screen: a slice scrolled to paints exactly what windowing it then would give."""
    s = viewport.series
    assert s is not None
    qtbot.waitUntil(lambda: len(s.cache) == s.count, timeout=30000)  # all decoded
    viewport.set_window(40.0, 80.0)
    state = (40.0, 80.0, viewport.invert)
    want = min(s.count - 1, viewport.windowed.radius)
    qtbot.waitUntil(
        lambda: all(viewport.windowed.get(s, i, state) is not None for i in range(want + 1)),
        timeout=10000,
    )
    made = viewport.windowed.get(s, 5, state)
    assert made is not None
    # the worker also rendered slice 5's own overlay line, as the GUI thread renders it
    from app.gui.viewport import _TEXT, _render_line

    font, _big, fkey, *_ = viewport._annotation_fonts()
    line = viewport._text_cache.get((f"Im 6 / {s.count}", fkey, _TEXT.rgba()))
    assert line is not None and line == _render_line(f"Im 6 / {s.count}", font, _TEXT)
    np.testing.assert_array_equal(made, window_to_uint8(s.cache.get(5), 40.0, 80.0))
    viewport.set_index(5)
    assert viewport.display is made  # painted from the frame made ahead
    # another window: nothing made for the old one is shown
    viewport.set_window(400.0, 2000.0)
    assert viewport.windowed.get(s, 6, state) is None
    viewport.set_index(6)
    np.testing.assert_array_equal(viewport.display, window_to_uint8(viewport.frame, 400.0, 2000.0))


def test_a_new_slice_reuses_the_other_corners_and_paints_the_same(
    qtbot: Any, viewport: Viewport
) -> None:
    """A slice not painted before gets only its own corner laid out (by the worker that windows
    it ahead, or on the GUI thread; the rest is reused from the slice before) and paints the
    very pixels of a layout from scratch."""

    def grab() -> np.ndarray:
        viewport.view.viewport().repaint()
        img = viewport.view.viewport().grab().toImage()
        return np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).copy()

    grab()
    assert len(viewport._overlay_base) == 1
    # the worker that windows the next slices lays their overlays out too
    qtbot.waitUntil(lambda: (viewport._last_rest, 3) in viewport._annotation_ops, timeout=10000)
    viewport.set_index(3)
    wait_frame(qtbot, viewport, 3)
    reused = grab()
    assert any(line == f"Im 4 / {viewport.count}" for line in viewport.annotation_text()["bl"])
    viewport._annotation_ops.clear()
    viewport._overlay_base.clear()
    viewport._block_ops.clear()
    assert np.array_equal(grab(), reused)


def test_a_new_font_lays_the_overlay_out_again(qtbot: Any, viewport: Viewport) -> None:
    """The overlay blits are kept by what they are made from, the widget font included."""

    def grab() -> np.ndarray:
        viewport.view.viewport().repaint()
        img = viewport.view.viewport().grab().toImage()
        return np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).copy()

    before = grab()
    key = viewport._font_key
    font = viewport.font()
    font.setBold(True)  # the overlay keeps its 9 pt size, in the widget's family and weight
    viewport.setFont(font)
    assert viewport._font_key != key
    assert not np.array_equal(grab(), before)


def test_a_window_drag_windows_ahead_once_it_ends(qtbot: Any, viewport: Viewport) -> None:
    """Windowing the next slices for every move of a window/level drag would be thrown away
    at the next move: the worker is asked once, with the window the drag ends on."""
    s = viewport.series
    assert s is not None
    qtbot.waitUntil(lambda: len(s.cache) == s.count, timeout=30000)
    asked: list[tuple[float, float, bool]] = []
    ask = viewport.windowed.prefetch
    viewport.windowed.prefetch = lambda series, state, *a: (
        asked.append(state),
        ask(series, state, *a),
    )  # type: ignore[method-assign]
    drag(viewport, QPointF(300, 300), QPointF(380, 340), button=Qt.MouseButton.RightButton)
    final = (viewport.window_center, viewport.window_width, viewport.invert)
    assert asked and set(asked) == {final}
    qtbot.waitUntil(lambda: viewport.windowed.get(s, 1, final) is not None, timeout=10000)


def test_a_series_shown_again_after_its_window_closed_decodes(
    qtbot: Any, ct_head_series: SeriesData
) -> None:
    """Closing a window stops the decoding of the series it shows; showing the series again
    (another viewport) decodes it again, instead of waiting for ever on a stopped provider."""
    from app.gui.frames import FrameProvider

    FrameProvider.for_series(ct_head_series).stop()  # what the main window's close does
    ct_head_series.cache.clear()  # nothing decoded is left: the new viewport needs decoding
    vp = Viewport(Settings())
    qtbot.addWidget(vp)
    vp.resize(400, 400)
    vp.show()
    vp.set_series(ct_head_series)
    vp.set_index(5)
    wait_frame(qtbot, vp, 5, timeout=20000)
    assert vp.frame is not None and vp.frame.shape == (512, 512)
