"""The stack stage: per pass, polarisation and window the temporal median of sigma0 in dB,
changes (pre - post), ascending/descending fusion, and the six input groups G1..G6.

Public API: :func:`stack_event` (the stage), :func:`nanmedian_stack` (the median kernel),
:func:`median_db_files` (median in dB of a list of rasters), :func:`fuse`.
"""

from .core import (GROUP_BANDS, Source, fuse, fusion_quality_path, median_db_files,
                   process_block, read_db_stack, selection_path, stack_event)
from .kernel import nanmedian_stack, to_db
from .scenes import Acquisition, SceneFile, Selection, acquisitions, scan, select

__all__ = ["Acquisition", "GROUP_BANDS", "SceneFile", "Selection", "Source", "fuse", "fusion_quality_path",
           "median_db_files", "nanmedian_stack", "process_block", "read_db_stack", "scan", "acquisitions",
           "select", "selection_path", "stack_event", "to_db"]
