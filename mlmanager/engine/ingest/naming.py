"""Column names as the Parquet file needs them: unique and non-empty."""

from __future__ import annotations


class ColumnNamer:
    """Makes column names unique and non-empty, remembering what it renamed.

    Names arrive all at once (CSV, Parquet, the Excel header) or a few at a time as new keys
    appear (JSON Lines, Excel cells right of the header), hence the incremental interface.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.renamed: dict[str, str] = {}
        self.renamed_count = 0
        self._taken: set[str] = set()

    def add(self, originals: list[str]) -> list[str]:
        # Names that are fine keep them even when an earlier empty column would be renamed to
        # the same text, so reserve them before renaming anything.
        keep: set[int] = set()
        for index, original in enumerate(originals):
            if original.strip() and original not in self._taken:
                keep.add(index)
                self._taken.add(original)
        added = []
        for index, original in enumerate(originals):
            if index in keep:
                name = original
            else:
                name = self._rename(original, position=len(self.names) + index + 1)
            added.append(name)
        self.names.extend(added)
        return added

    def _rename(self, original: str, *, position: int) -> str:
        base = original if original.strip() else f"column_{position}"
        name = base
        suffix = 2
        while name in self._taken:
            name = f"{base}_{suffix}"
            suffix += 1
        self._taken.add(name)
        # One original that occurs three times has two new names; the first one is kept.
        self.renamed.setdefault(original, name)
        self.renamed_count += 1
        return name

    def notes(self) -> list[str]:
        if not self.renamed_count:
            return []
        noun = "name" if self.renamed_count == 1 else "names"
        return [f"Renamed {self.renamed_count} duplicate or empty column {noun}."]
