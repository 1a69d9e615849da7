"""One self-contained HTML report of a training run: ``write_report(run_dir)`` / ``contrastkit report RUN_DIR``.

matplotlib is imported here only (never by the losses, heads, views or eval packages).
"""

from contrastkit.report.run_logs import RunLogs, Series, read_run_logs
from contrastkit.report.write_report import SECTION_IDS, write_report

__all__ = ["SECTION_IDS", "RunLogs", "Series", "read_run_logs", "write_report"]
