"""Reports people look at: the HTML dataset report, the Hugging Face dataset card, version diffs and export folders."""

from curate.report.card import dataset_card
from curate.report.dataset import dataset_report, write_dataset_report
from curate.report.diff import DatasetDiff, diff_versions
from curate.report.publish import export_folder

__all__ = ["DatasetDiff", "dataset_card", "dataset_report", "diff_versions", "export_folder", "write_dataset_report"]
