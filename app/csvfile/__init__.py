"""CSV files of a declared table: the cell rules, export (streamed) and import.

cells     the cell rules, in Python and in SQL side by side
export    header, file name, the streamed lines of a query
reader    a file's lines, header and rows, each parsed on its own
sets      compact sets an import remembers a file in
importer  classify rows against the table (preview), then write them
"""

from app.csvfile.cells import format_text, line_expression, read_text
from app.csvfile.export import export_chunks, export_filename, header_line, primed
from app.csvfile.importer import (
    Preview,
    PreviewOutdated,
    Progress,
    RowError,
    Source,
    import_file,
    preview_file,
)
from app.csvfile.reader import CsvFileError, ParsedRow

__all__ = [
    "CsvFileError",
    "ParsedRow",
    "Preview",
    "PreviewOutdated",
    "Progress",
    "RowError",
    "Source",
    "export_chunks",
    "export_filename",
    "format_text",
    "header_line",
    "import_file",
    "line_expression",
    "preview_file",
    "primed",
    "read_text",
]
