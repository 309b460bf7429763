"""一单两库: the check-item list, the target directory and the inspector directory (Art. 8-18).

Bureaus keep these lists in Excel; this package reads, checks, stores and writes them back.

Pure (no database; an import-linter contract holds them to it):

* `values`: cells to values, text cleaning, the converters with Chinese reasons;
* `choices`: the Chinese words for each enumerated field, and the labels written back;
* `rows`: the row models (pydantic) and the context they are checked against;
* `columns`: each list's headers, aliases and hints (`Kind`, `SPECS`);
* `report`: what an import did, and the rejected-rows workbook;
* `template`: the blank list with an example row.

On the database: `importer` (`import_rows`), `export`, `lookups` (`find_targets`).
"""

from storage.directory.columns import SPECS, TAG_FIELD, Column, Kind, headers
from storage.directory.export import export
from storage.directory.importer import import_rows
from storage.directory.lookups import find_targets
from storage.directory.report import (
    ImportReport,
    Rejection,
    StrictImportError,
    rejections_file_name,
)
from storage.directory.template import EXAMPLE_MARK, example_row, template_bytes, write_template
from storage.directory.values import clean_text, parse_date
from storage.spreadsheet import SpreadsheetError

__all__ = [
    "EXAMPLE_MARK",
    "template_bytes",
    "SPECS",
    "TAG_FIELD",
    "Column",
    "ImportReport",
    "Kind",
    "Rejection",
    "SpreadsheetError",
    "StrictImportError",
    "clean_text",
    "example_row",
    "export",
    "find_targets",
    "headers",
    "import_rows",
    "parse_date",
    "rejections_file_name",
    "write_template",
]
