"""Format readers and writers: input files -> canonical records, records -> JSONL exports.

See ``docs/formats.md`` for every format, its keys and how it maps to records.
"""

from curate.formats.detect import detect_format
from curate.formats.reader import SourceRows, read_source
from curate.formats.writers import write_records

__all__ = ["SourceRows", "detect_format", "read_source", "write_records"]
