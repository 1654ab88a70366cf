"""Hanging protocols, priors and offset sync in the main window.

When a study opens, its priors are looked up in the library and a hanging protocol is chosen
(:mod:`app.dicom.hanging`), on a worker. A protocol that places several series (current and
prior side by side, MR 2x2 by sequence) or asks for MPR is applied: layout, which series goes
where, window preset and scroll sync. The status bar names the priors found. View ▸ Hanging
protocol lists the protocols to switch to, and saves the current layout as a protocol in the
user's config folder. View ▸ Set sync landmark (Ctrl+L) records the slice each viewport shows as
the same anatomical landmark: linked scrolling then follows positions relative to it (offset
sync), so a current and a prior CT scroll together even when their table positions differ.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from PySide6.QtGui import QAction, QKeySequence

from app.dicom.hanging import (
    HangingPlan,
    OffsetSync,
    Protocol,
    choose_protocol,
    find_priors,
    load_protocols,
    plan,
    save_protocol,
    study_features,
)

log = logging.getLogger(__name__)


def match_study(
    library: Any, study_uid: str, protocol_name: str | None = None, progress: Any = None
) -> tuple[HangingPlan | None, list[dict[str, Any]], list[Protocol]]:
    """Worker: priors, the chosen (or named) protocol's plan, and the protocols available."""
    protocols = load_protocols()
    current = study_features(library, study_uid)
    prior_uids = find_priors(library, study_uid)
    priors = [study_features(library, u) for u in prior_uids]
    if protocol_name:
        chosen = next((p for p in protocols if p.name == protocol_name), None)
    else:
        chosen = choose_protocol(protocols, current, len(priors))
    info = [{"study_uid": p.study_uid, "study_date": p.study_date} for p in priors]
    return (plan(chosen, current, priors) if chosen else None), info, protocols


class HangingController:
    """Applies hanging protocols to the main window (see the module docstring)."""

    def __init__(self, window: Any) -> None:
        self.w = window
        self.sync = OffsetSync()
        self.protocols: list[Protocol] = []
        self.last_plan: HangingPlan | None = None
        self.priors: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self.auto = True
        window.offset_sync = self.sync
        self.menu = None
        self.act_landmark = QAction(window.tr("Set sync landmark (current slices)"), window)
        self.act_landmark.setShortcut(QKeySequence("Ctrl+L"))
        self.act_landmark.triggered.connect(self.set_landmark)
        self.act_save = QAction(window.tr("Save layout as protocol…"), window)
        self.act_save.triggered.connect(self.save_current)
        window.addAction(self.act_landmark)
        for menu_action in window.menuBar().actions():
            menu = menu_action.menu()
            if menu is not None and menu_action.text().replace("&", "") == window.tr("View"):
                menu.addSeparator()
                self.menu = menu.addMenu(window.tr("Hanging protocol"))
                self.menu.aboutToShow.connect(self._fill_menu)
                menu.addAction(self.act_landmark)
                break
        window.study_changed.connect(self.study_opened)

    # -- choosing ----------------------------------------------------------------------------
    def study_opened(self, study_uid: str) -> None:
        """A study is shown: look up priors and a protocol (once per study)."""
        if not study_uid or study_uid in self._seen:
            return
        self._seen.add(study_uid)
        self._match(study_uid, None)

    def apply_protocol(self, name: str) -> None:
        """Apply a protocol by name to the study in the active viewport."""
        series = self.w.active_viewport().series
        if series is not None and series.study_uid:
            self._match(series.study_uid, name, force=True)

    def _match(self, study_uid: str, name: str | None, force: bool = False) -> None:
        def done(result: tuple[HangingPlan | None, list[dict[str, Any]], list[Protocol]]) -> None:
            hp, priors, protocols = result
            self.protocols = protocols
            self.priors = priors
            if priors:
                dates = ", ".join(p["study_date"] or "?" for p in priors[:3])
                self.w.show_status(self.w.tr("Prior studies of this patient: ") + dates, 8000)
            if hp is None:
                return
            self.last_plan = hp
            if force or (self.auto and (len(hp.placements) > 1 or hp.layout == "mpr")):
                self.apply(hp)

        def failed(exc: BaseException) -> None:
            log.info("no hanging protocol: %s", exc)

        self.w.run_in_background(
            lambda progress=None: match_study(self.w.library(), study_uid, name),
            on_result=done,
            on_error=failed,
        )

    # -- applying ----------------------------------------------------------------------------
    def apply(self, hp: HangingPlan) -> None:
        """Layout, series placement, window and sync of a plan."""
        w = self.w
        if hp.layout == "mpr":
            if not w.act_mpr.isChecked():
                w.act_mpr.setChecked(True)
            return
        if getattr(w, "act_mpr", None) is not None and w.act_mpr.isChecked():
            w.act_mpr.setChecked(False)
        w.set_layout(hp.layout)
        w.act_sync.setChecked(hp.sync in ("position", "offset"))
        w.settings.sync_scroll = w.act_sync.isChecked()
        if hp.sync == "offset":
            w.show_status(
                w.tr("Scroll each viewport to the same landmark, then press Ctrl+L to link them."),
                10000,
            )
        viewports = w.grid.visible
        for placement in hp.placements:
            if placement.viewport >= len(viewports):
                continue
            vp = viewports[placement.viewport]
            shown = vp.series is not None and vp.series.series_uid == placement.series_uid
            if shown:
                self._window(vp, placement.window)
                continue
            self._open_into(vp, placement.series_uid, placement.window)

    def _open_into(self, vp: Any, series_uid: str, window: str) -> None:
        from app.gui.loader import open_library_series

        def done(stacks: list[Any]) -> None:
            if not stacks:
                return
            for s in stacks:
                self.w.browser.add_series(s)
            self.w._show_in(vp, stacks[0])
            self._window(vp, window)

        self.w.run_in_background(
            open_library_series,
            series_uid,
            on_result=done,
            cache_bytes=self.w.settings.cache_mb * 1024 * 1024,
            thumb_size=self.w.settings.thumbnail_size,
        )

    @staticmethod
    def _window(vp: Any, name: str) -> None:
        from app.gui.presets import CT_PRESETS

        preset = next((p for p in CT_PRESETS if p.name.lower() == (name or "").lower()), None)
        if preset is not None:
            vp.set_window(preset.center, preset.width)

    # -- menu, saving, landmarks -------------------------------------------------------------
    def _fill_menu(self) -> None:
        if self.menu is None:
            return
        self.menu.clear()
        for p in sorted(self.protocols, key=lambda p: p.name):
            act = self.menu.addAction(p.name)
            act.triggered.connect(lambda _=False, n=p.name: self.apply_protocol(n))
        if not self.protocols:
            self.menu.addAction(self.w.tr("(open a study first)")).setEnabled(False)
        self.menu.addSeparator()
        self.menu.addAction(self.act_save)

    def current_protocol(self, name: str) -> Protocol:
        """The current layout as a protocol (what "Save layout as protocol" writes)."""
        w = self.w
        active = w.active_viewport().series
        study = active.study_uid if active is not None else ""
        viewports = []
        for vp in w.grid.visible:
            s = vp.series
            if s is None:
                continue
            want: dict[str, Any] = {"modality": [s.modality]}
            if s.description:
                want["description"] = "^" + re.escape(s.description) + "$"
            viewports.append(
                {"study": "current" if s.study_uid == study else "prior", "series": want}
            )
        modality = active.modality if active is not None else ""
        n_priors = sum(1 for v in viewports if v["study"] == "prior")
        match: dict[str, Any] = {"modality": [modality]} if modality else {}
        if n_priors:
            match["min_priors"] = 1
        layout = (
            "mpr"
            if getattr(w, "act_mpr", None) is not None and w.act_mpr.isChecked()
            else w.grid.layout_name
        )
        return Protocol.from_json(
            {
                "name": name,
                "match": match,
                "layout": layout,
                "viewports": viewports,
                "window": "header",
                "sync": "position" if w.act_sync.isChecked() else "none",
                "priority": 30,
            }
        )

    def save_current(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        name, ok = QInputDialog.getText(
            self.w, self.w.tr("Save hanging protocol"), self.w.tr("Name:")
        )
        if not ok or not name.strip():
            return
        try:
            protocol = self.current_protocol(name.strip())
        except Exception as exc:  # noqa: BLE001 - shown the one GUI way
            self.w.show_error(exc)
            return
        self.w.run_in_background(
            lambda progress=None: save_protocol(protocol),
            on_result=lambda path: self._saved(protocol),
        )

    def _saved(self, protocol: Protocol) -> None:
        self.protocols = [p for p in self.protocols if p.name != protocol.name] + [protocol]
        self.w.show_status(self.w.tr("Hanging protocol saved: ") + protocol.name)

    def set_landmark(self) -> None:
        """Each visible viewport's current slice is the same landmark (offset sync)."""
        self.sync.clear()
        count = 0
        for vp in self.w.grid.visible:
            if vp.series is None:
                continue
            pos = vp.series.slice_position(vp.index)
            if pos is not None:
                self.sync.set_landmark(id(vp), pos)
                count += 1
        if count >= 2:
            self.w.act_sync.setChecked(True)
            self.w.settings.sync_scroll = True
            self.w.show_status(self.w.tr("Viewports linked at this landmark (offset sync)."))
        else:
            self.w.show_status(self.w.tr("Offset sync needs two viewports with slice positions."))


def install(window: Any) -> HangingController:
    """Add hanging protocols, priors and offset sync to the main window."""
    controller = HangingController(window)
    window.hanging = controller
    return controller
