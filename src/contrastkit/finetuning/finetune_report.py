"""The HTML report of a fine-tuning run: the accuracy table and the confusion matrix on the test split."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from contrastkit.outputs.html_page import Section, render_page, table


def confusion_html(confusion: list[list[int]], classes: list[str], unit: str = "images") -> str:
    """The confusion matrix as an HTML table: rows true classes, columns predicted, cells shaded by row share."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    rows = []
    for name, counts in zip(classes, confusion, strict=True):
        total = max(sum(counts), 1)
        cells = []
        for j, count in enumerate(counts):
            share = count / total
            colour = f"rgba(9, 105, 218, {share:.3f})" if name == classes[j] else f"rgba(207, 34, 46, {share:.3f})"
            text = "#fff" if share > 0.5 else "#1f2328"
            cells.append(f'<td class="num" style="background:{colour};color:{text}">{count}</td>')
        rows.append(f'<tr><th>{html.escape(name)}</th>{"".join(cells)}<td class="num">{total}</td></tr>')
    return (
        '<table class="confusion"><thead><tr><th>true \\ predicted</th>'
        f"{head}<th>{unit}</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def write_finetune_report(result: Any, path: Path, trained: str) -> Path:
    """Write ``report.html`` of a fine-tuning result (images or texts): its ``rows()`` as the accuracy table, with
    its ``summary()``, the confusion matrix of the exported classifier and the time of each part."""
    accuracy = Section(
        "accuracy",
        "Test accuracy",
        f"{result.summary()}. Every row is trained on the same labelled {result.unit}.",
        body=table(["classifier", "test accuracy"], [list(row) for row in result.rows()]),
    )
    confusion = Section(
        "confusion",
        f"Confusion matrix of the exported classifier ({trained})",
        "Rows: true class; columns: predicted class. The diagonal (blue) is right; red cells are the mistakes, "
        "shaded by their share of the row.",
        body=confusion_html(result.confusion, result.classes, result.unit),
    )
    timing = Section(
        "time",
        "Time",
        "Wall time of each part, in seconds.",
        body=table(["part", "seconds"], [[k, round(v, 1)] for k, v in result.seconds.items()]),
    )
    path.write_text(
        render_page("contrastkit fine-tuning", str(path.parent), [accuracy, confusion, timing]), encoding="utf-8"
    )
    return path
