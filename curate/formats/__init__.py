"""Format readers and writers: input files -> canonical records, records -> JSONL exports.

See ``docs/formats.md`` for every format, its keys and how it maps to records.
"""

from curate.formats.chunks import SourceRows, read_jsonl_block, read_table_chunk, resolve_source
from curate.formats.detect import detect_format
from curate.formats.reader import read_source
from curate.formats.writers import write_records

__all__ = [
    "SourceRows",
    "detect_format",
    "read_jsonl_block",
    "read_source",
    "read_table_chunk",
    "resolve_source",
    "write_records",
]
