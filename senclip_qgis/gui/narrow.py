"""What keeps the dock usable at the width QGIS gives a new right-hand dock (298 px on 3.22, 284 px
inside the scroll area): button rows that wrap, and combo boxes that may be narrower than their
longest item (the popup still shows it whole).

Qt has no wrapping layout of its own; ``FlowLayout`` is Qt's "Flow Layout" example (greedy lines,
height for width) with one addition: every line is justified, its spare width shared by its widgets,
so a wrapped row of buttons reads as a row, not as a ragged heap.
"""
from __future__ import annotations

from qgis.PyQt.QtCore import QPoint, QRect, QSize, Qt
from qgis.PyQt.QtWidgets import QComboBox, QLayout

COMBO_CHARS = 6  # the least a combo may shrink to, in characters; it takes the row's width when there is any


class FlowLayout(QLayout):
    """Widgets left to right, wrapped onto the next line when the width runs out, lines justified."""

    def __init__(self, parent=None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items = []
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:  # noqa: N802 - Qt override
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index):  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index):  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - all on one line
        width = self._width(self._items) if self._items else 0
        height = max((i.sizeHint().height() for i in self._items), default=0)
        m = self.contentsMargins()
        return QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QSize:  # noqa: N802 - one widget per line
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _lines(self, width: int) -> list[list]:
        """The visible items in as few lines as fit ``width`` at their size hints, as even as fits."""
        items = [i for i in self._items if not i.isEmpty()]
        lines = [[]]
        for item in items:  # greedy: the fewest lines
            if lines[-1] and self._width(lines[-1] + [item]) > width:
                lines.append([])
            lines[-1].append(item)
        per = -(-len(items) // len(lines))  # 4 buttons on 2 lines: 2 + 2, not 3 + 1
        even = [items[k:k + per] for k in range(0, len(items), per)]
        return even if len(even) == len(lines) and all(self._width(line) <= width for line in even) else lines

    def _width(self, line: list) -> int:
        return sum(i.sizeHint().width() for i in line) + self.spacing() * (len(line) - 1)

    def _arrange(self, rect, move: bool) -> int:
        """Lay the items out in ``rect`` (when ``move``); the height that takes, margins included."""
        m = self.contentsMargins()
        inner = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        y = inner.y()
        for line in self._lines(inner.width()):
            widths = [min(i.sizeHint().width(), inner.width()) for i in line]
            spare = max(inner.width() - sum(widths) - self.spacing() * (len(line) - 1), 0)
            height = max(i.sizeHint().height() for i in line)
            x = inner.x()
            for n, (item, w) in enumerate(zip(line, widths)):
                w += spare // len(line) + (1 if n < spare % len(line) else 0)
                if move:
                    item.setGeometry(QRect(QPoint(x, y), QSize(w, height)))
                x += w + self.spacing()
            y += height + self.spacing()
        return max(y - self.spacing() - inner.y(), 0) + m.top() + m.bottom()


def flow(*widgets) -> FlowLayout:
    """A wrapping row of ``widgets`` (buttons, check boxes)."""
    row = FlowLayout()
    for w in widgets:
        row.addWidget(w)
    return row


def shrinkable(combo: QComboBox) -> QComboBox:
    """Let ``combo`` be narrower than its longest item: a model id must not widen the whole dock."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(COMBO_CHARS)
    return combo
