"""What a viewport shows, as a pure value: image index, window, orientation, zoom/pan, overlay, tool.

The viewer (:class:`app.gui.viewport.Viewport`) renders a :class:`ViewState` and turns user input
into new ones through the pure transitions here (``scrolled``, ``windowed``, ``rotated``,
``flipped``, ``zoom_by``, ``pan_by``, ``fit``, ``one_to_one``, ``reset``), so the rules (clamping, orientation algebra) are
tested without a window, and a state can be saved, restored or shared between viewports
(``to_dict``/``from_dict``). No Qt here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from app.core.errors import UsageError

TOOLS = ("pointer", "window", "pan", "zoom", "length", "rect", "ellipse", "angle", "cobb")
Matrix = tuple[tuple[int, int], tuple[int, int]]
IDENTITY: Matrix = ((1, 0), (0, 1))
_ROT90: Matrix = ((0, -1), (1, 0))  # 90 degrees clockwise with y pointing down
_FLIP_H: Matrix = ((-1, 0), (0, 1))
_FLIP_V: Matrix = ((1, 0), (0, -1))
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


def _mul(a: Matrix, b: Matrix) -> Matrix:
    return (
        (a[0][0] * b[0][0] + a[0][1] * b[1][0], a[0][0] * b[0][1] + a[0][1] * b[1][1]),
        (a[1][0] * b[0][0] + a[1][1] * b[1][0], a[1][0] * b[0][1] + a[1][1] * b[1][1]),
    )


@dataclass(frozen=True)
class ViewState:
    """One viewport's view (see the module docstring).

    Attributes
    ----------
    index : int
        The image (frame) shown, 0-based.
    window : (center, width) or None
        In modality units; None: the series' default.
    invert : bool
        Shown inverted (MONOCHROME1 starts inverted).
    orientation : 2x2 int matrix
        Screen orientation: a product of 90-degree rotations and flips.
    zoom : float
        Screen pixels per image column pixel; 0 means "fitted" (the whole image in the viewport).
    pan : (dx, dy)
        Offset of the view centre from the image centre, in image pixels (column, row); the
        image's pixel grid, so it keeps its meaning under rotations and flips. (0, 0) when fitted.
    overlay_visible, overlay_opacity
        The AI overlay layer.
    tool : str
        The mouse tool (one of :data:`TOOLS`).
    """

    index: int = 0
    window: tuple[float, float] | None = None
    invert: bool = False
    orientation: Matrix = IDENTITY
    zoom: float = 0.0
    pan: tuple[float, float] = (0.0, 0.0)
    overlay_visible: bool = True
    overlay_opacity: float = 0.5
    tool: str = "pointer"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.tool not in TOOLS:
            raise UsageError(f"Unknown tool '{self.tool}'; choose one of {', '.join(TOOLS)}.")
        if self.index < 0:
            raise UsageError("The image index cannot be negative.")
        if self.window is not None and not float(self.window[1]) > 0:
            raise UsageError("The window width must be positive.")
        if not 0.0 <= float(self.overlay_opacity) <= 1.0:
            raise UsageError("The overlay opacity must be between 0 and 1.")
        if self.zoom and not MIN_ZOOM <= float(self.zoom) <= MAX_ZOOM:
            raise UsageError(f"The zoom must be between {MIN_ZOOM} and {MAX_ZOOM}.")
        m = self.orientation
        if abs(m[0][0] * m[1][1] - m[0][1] * m[1][0]) != 1 or any(
            abs(v) > 1 for row in m for v in row
        ):
            raise UsageError("The orientation must be a rotation or flip of the image.")

    # -- transitions (each returns a new state) -------------------------------------------------
    def scrolled(self, delta: int, count: int) -> "ViewState":
        """``delta`` images further, clamped to ``0..count-1``."""
        return replace(self, index=min(max(self.index + int(delta), 0), max(int(count) - 1, 0)))

    def at(self, index: int) -> "ViewState":
        """The same view on image ``index`` (not clamped: the viewer clamps to its series).

        A scroll calls this per slice, so only the index is checked (the rest of the state was
        checked when it was made) and the copy skips the constructor.
        """
        index = int(index)
        if index < 0:
            raise UsageError("The image index cannot be negative.")
        new = object.__new__(ViewState)
        new.__dict__.update(self.__dict__)  # a fresh copy, frozen to everyone else
        new.__dict__["index"] = index
        return new

    def windowed(self, center: float, width: float) -> "ViewState":
        """Another window (width at least 1e-6)."""
        return replace(self, window=(float(center), max(float(width), 1e-6)))

    def rotated(self, degrees: int = 90) -> "ViewState":
        """Rotated by a multiple of 90 degrees (positive clockwise)."""
        m = self.orientation
        for _ in range((int(degrees) // 90) % 4):
            m = _mul(_ROT90, m)
        return replace(self, orientation=m)

    def flipped(self, horizontal: bool = True) -> "ViewState":
        """Mirrored left-right (``horizontal``) or top-bottom, on screen."""
        return replace(self, orientation=_mul(_FLIP_H if horizontal else _FLIP_V, self.orientation))

    def zoom_by(
        self,
        factor: float,
        anchor: tuple[float, float] | None = None,
        fitted_zoom: float = 0.0,
    ) -> "ViewState":
        """Zoomed by ``factor`` (clamped to ``MIN_ZOOM..MAX_ZOOM``) about ``anchor``.

        Parameters
        ----------
        factor : float
            Greater than 1 zooms in.
        anchor : (x, y) or None
            The point that stays put on screen, in image pixels from the image centre (the frame
            of :attr:`pan`); None: the view centre.
        fitted_zoom : float
            The screen zoom of the fitted view, the base when this state is fitted (1:1 if 0).
        """
        base = self.zoom or float(fitted_zoom) or 1.0
        zoom = min(max(base * float(factor), MIN_ZOOM), MAX_ZOOM)
        pan = self.pan
        if anchor is not None:
            # the anchor keeps its screen position: (a - c) * base == (a - c') * zoom
            ax, ay = float(anchor[0]), float(anchor[1])
            k = base / zoom
            pan = (ax - (ax - pan[0]) * k, ay - (ay - pan[1]) * k)
        return replace(self, zoom=zoom, pan=pan)

    def zoomed(self, factor: float) -> "ViewState":
        """Zoomed by ``factor`` about the view centre (from 1:1 when fitted), clamped."""
        return self.zoom_by(factor)

    def pan_by(self, dx: float, dy: float, fitted_zoom: float = 0.0) -> "ViewState":
        """The view centre moved by ``dx, dy`` image pixels.

        A fitted state leaves the fit at ``fitted_zoom`` (its screen zoom): a fitted view is
        always centred, so a pan needs an explicit zoom to be kept.
        """
        zoom = self.zoom
        if not zoom and fitted_zoom:
            zoom = min(max(float(fitted_zoom), MIN_ZOOM), MAX_ZOOM)
        return replace(self, zoom=zoom, pan=(self.pan[0] + float(dx), self.pan[1] + float(dy)))

    def panned(self, dx: float, dy: float) -> "ViewState":
        """Moved by ``dx, dy`` image pixels (the zoom unchanged)."""
        return replace(self, pan=(self.pan[0] + float(dx), self.pan[1] + float(dy)))

    def fit(self) -> "ViewState":
        """The whole image in the viewport, centred."""
        return replace(self, zoom=0.0, pan=(0.0, 0.0))

    def one_to_one(self) -> "ViewState":
        """One image pixel per screen pixel, about the same view centre."""
        return replace(self, zoom=1.0)

    def with_tool(self, tool: str) -> "ViewState":
        return replace(self, tool=tool)

    def reset(self, invert: bool = False) -> "ViewState":
        """The series' initial view on the same image and tool."""
        return ViewState(
            index=self.index,
            invert=invert,
            tool=self.tool,
            overlay_visible=self.overlay_visible,
            overlay_opacity=self.overlay_opacity,
        )

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ViewState":
        """Raises :class:`UsageError` for values out of range."""
        try:
            window = d.get("window")
            m = d.get("orientation", IDENTITY)
            return cls(
                index=int(d.get("index", 0)),
                window=(float(window[0]), float(window[1])) if window else None,
                invert=bool(d.get("invert", False)),
                orientation=((int(m[0][0]), int(m[0][1])), (int(m[1][0]), int(m[1][1]))),
                zoom=float(d.get("zoom", 0.0)),
                pan=tuple(map(float, d.get("pan", (0, 0)))),  # type: ignore[arg-type]
                overlay_visible=bool(d.get("overlay_visible", True)),
                overlay_opacity=float(d.get("overlay_opacity", 0.5)),
                tool=str(d.get("tool", "pointer")),
            )
        except (TypeError, ValueError, IndexError, KeyError):
            raise UsageError("The saved view is not in the shape Hilum writes.") from None
